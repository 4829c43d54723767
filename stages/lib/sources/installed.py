"""The smoke-scale source: Python files of distributions installed with the project.

Real code that needs no network and is the same on every machine: the version of
each distribution must equal its pin in params, and every file is checked against
the sha256 recorded in the distribution's ``RECORD`` before it is used. A file whose
bytes differ from its record (a patched site-packages) is yielded with
``fetch_error`` set, so it is counted and never silently used.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
from typing import Iterator

from stages.lib.errors import StageError
from stages.lib.params import InstalledSource
from stages.lib.sources import SourceFile

# Trove classifiers say "Apache Software License" without a version: the projects
# below that use it publish Apache-2.0 (checked in their LICENSE files).
CLASSIFIER_SPDX = {
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: The Unlicense (Unlicense)": "Unlicense",
}


class SourceError(StageError, RuntimeError):
    """A source that cannot be read as pinned; the message names the params key."""


def _license_fields(meta) -> dict[str, object]:
    """Licence columns in priority order: the PEP 639 expression, classifiers, free text."""
    classifiers = [CLASSIFIER_SPDX[c] for c in meta.get_all("Classifier") or [] if c in CLASSIFIER_SPDX]
    return {
        "license_expression": meta.get("License-Expression") or None,
        "license_classifiers": classifiers or None,
        "license": meta.get("License") or None,
    }


def _record_digest(data: bytes) -> str:
    """The ``sha256=`` value of a wheel RECORD line: urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


def iter_installed(source: InstalledSource, key: str = "") -> Iterator[SourceFile]:
    """Yield every ``.py`` file of the pinned distributions, in params order then path order."""
    record_index = 0
    for name, pinned in source.distributions.items():
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise SourceError(
                f"params.yaml: fetch.sources.{key}.distributions.{name}: distribution is not installed "
                f"(install the project with `pip install -e .`)"
            ) from None
        version = dist.version  # every read of it parses METADATA again (3 ms, twice a file before)
        if version != pinned:
            raise SourceError(
                f"params.yaml: fetch.sources.{key}.distributions.{name}: pinned {pinned} but {version} "
                f"is installed; the smoke corpus would differ from everyone else's"
            )
        licenses = _license_fields(dist.metadata)
        files = sorted((f for f in dist.files or [] if f.suffix == ".py"), key=lambda f: f.as_posix())
        for packaged in files:
            record_index += 1
            data: bytes | None = None
            error = None
            if packaged.hash is None or packaged.hash.mode != "sha256":
                error = "no sha256 in RECORD"
            else:
                try:
                    data = packaged.locate().read_bytes()
                except OSError as exc:
                    error = f"unreadable: {exc.strerror}"
                else:
                    if _record_digest(data) != packaged.hash.value:
                        data, error = None, "bytes differ from the RECORD hash"
            yield SourceFile(
                record_index=record_index,
                repo_name=f"{name}=={version}",
                path=packaged.as_posix(),
                data=data,
                license_fields=licenses,
                stars=None,
                is_generated=None,
                fetch_error=error,
                source=f"installed:{name}",
                revision=version,
            )
