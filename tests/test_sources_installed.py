"""The smoke source: pinned distributions, verified against their RECORD hashes."""

import importlib.metadata

import pytest

from stages.lib.params import InstalledSource
from stages.lib.sources.installed import SourceError, _record_digest, iter_installed
from tests.conftest import profile_values


def installed_source(distributions: dict[str, str]) -> InstalledSource:
    """The smoke profile's native-zh source (every file: limit null) with these distributions."""
    return InstalledSource(**profile_values("fetch.sources.native-zh", distributions=distributions))


def test_files_are_yielded_in_order_and_verified():
    version = importlib.metadata.version("datasketch")
    files = list(iter_installed(installed_source({"datasketch": version})))
    assert files, "datasketch ships python files"
    assert [f.record_index for f in files] == list(range(1, len(files) + 1))
    assert [f.path for f in files] == sorted(f.path for f in files)
    assert all(f.data is not None and f.fetch_error is None for f in files)
    assert all(f.repo_name == f"datasketch=={version}" and f.revision == version for f in files)
    assert files[0].license_fields["license_classifiers"] == ["MIT"]


def test_version_drift_names_the_key():
    with pytest.raises(SourceError, match=r"fetch\.sources\.code\.distributions\.datasketch: pinned 0\.0\.1"):
        list(iter_installed(installed_source({"datasketch": "0.0.1"}), "code"))


def test_missing_distribution_names_the_key():
    with pytest.raises(SourceError, match="no-such-dist: distribution is not installed"):
        list(iter_installed(installed_source({"no-such-dist": "1"}), "code"))


def test_record_digest_format():
    # RECORD stores urlsafe base64 of the sha256 digest without '=' padding
    assert _record_digest(b"") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


def test_a_file_that_differs_from_its_record_is_flagged(monkeypatch):
    version = importlib.metadata.version("datasketch")
    import stages.lib.sources.installed as installed

    monkeypatch.setattr(installed, "_record_digest", lambda data: "tampered")
    files = list(iter_installed(installed_source({"datasketch": version})))
    assert all(f.data is None and f.fetch_error == "bytes differ from the RECORD hash" for f in files)
