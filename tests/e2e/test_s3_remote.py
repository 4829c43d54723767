"""Adapters and the run-cache shared through an S3 remote (moto's server on 127.0.0.1), as a team would.

A toy pipeline whose one ``train`` item stands for an adapter: it is built and pushed with the run-cache
from one clone; fresh clones configured only with the remote (endpoint and credentials in
``.dvc/config.local``, never ``.dvc/config``) get it back with ``dvc pull train@<run>`` or with
``dvc pull --run-cache && dvc repro``, without training. A wrong bucket and missing credentials fail
naming what is wrong, with the workspace untouched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.s3_server import s3_server

from .conftest import dvc, files_holding, git

pytestmark = pytest.mark.e2e

BUCKET = "team-adapters"
KEY_ID, SECRET = "AKIAFAKETEAMKEY0001", "fake-team-secret-3c9d0e7a"
RUN = "seed42"

# Training refuses to run where `no-training` exists: a restored adapter must come from the remote
TRAIN = """\
import sys
from pathlib import Path
if Path("no-training").exists():
    sys.exit("trained although the adapter is on the remote")
Path("adapters").mkdir(exist_ok=True)
Path("adapters/" + sys.argv[1]).write_text("adapter weights for " + sys.argv[1])
"""
DVC_YAML = """\
stages:
  train:
    foreach: [seed42]
    do:
      cmd: python train.py ${item}
      deps:
        - train.py
      outs:
        - adapters/${item}
"""


@pytest.fixture(scope="module")
def endpoint():
    with s3_server(BUCKET, KEY_ID, SECRET) as (url, _):
        yield url


@pytest.fixture(scope="module", autouse=True)
def no_ambient_aws(tmp_path_factory):
    """Credentials only from what the test configures: no AWS variables, files, instance metadata or DVC
    user config from this machine."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-aws-credentials"))
        patch.setenv("AWS_CONFIG_FILE", str(home / "no-aws-config"))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in ("GLOBAL_CONFIG_DIR", "SYSTEM_CONFIG_DIR", "SITE_CACHE_DIR"):
            patch.setenv(f"DVC_{name}", str(home / name.lower()))
        yield


def configure(repo: Path, endpoint: str, credentials: bool = True) -> None:
    """What each team member runs once: the endpoint and their own keys, in .dvc/config.local only."""
    dvc("remote", "modify", "--local", "team", "endpointurl", endpoint, cwd=repo)
    if credentials:
        dvc("remote", "modify", "--local", "team", "access_key_id", KEY_ID, cwd=repo)
        dvc("remote", "modify", "--local", "team", "secret_access_key", SECRET, cwd=repo)


@pytest.fixture(scope="module")
def origin(tmp_path_factory, endpoint, no_ambient_aws) -> Path:
    """The clone that trained: adapter built, pushed with its run-cache, dvc.yaml/dvc.lock committed."""
    repo = tmp_path_factory.mktemp("s3") / "origin"
    repo.mkdir()
    (repo / "train.py").write_text(TRAIN)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / ".gitignore").write_text("/no-training\n")
    git("init", "-q", "-b", "main", cwd=repo)
    dvc("init", "-q", cwd=repo)
    dvc("remote", "add", "-d", "team", f"s3://{BUCKET}/language-decoded", cwd=repo)
    configure(repo, endpoint)
    dvc("repro", cwd=repo)
    dvc("push", "--run-cache", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "trained", cwd=repo)
    return repo


def clone(origin: Path, to: Path) -> Path:
    git("clone", "-q", str(origin), str(to), cwd=origin.parent)
    (to / "no-training").write_text("")
    return to


def test_secrets_stay_in_config_local(origin):
    assert files_holding(origin, SECRET) == [".dvc/config.local"]
    assert files_holding(origin, KEY_ID) == [".dvc/config.local"]
    committed = (origin / ".dvc" / "config").read_text()
    assert f"s3://{BUCKET}/language-decoded" in committed and "endpointurl" not in committed


def test_pull_one_adapter_from_s3_without_training(origin, endpoint, tmp_path):
    repo = clone(origin, tmp_path / "pulled")
    assert not (repo / "adapters" / RUN).exists()
    configure(repo, endpoint)
    dvc("pull", f"train@{RUN}", cwd=repo)
    assert (repo / "adapters" / RUN).read_text() == f"adapter weights for {RUN}"
    assert dvc("status", "--json", cwd=repo).stdout.strip() == "{}"


def test_run_cache_from_s3_restores_without_training(origin, endpoint, tmp_path):
    repo = clone(origin, tmp_path / "restored")
    configure(repo, endpoint)
    dvc("pull", "--run-cache", cwd=repo)
    dvc("repro", cwd=repo)
    assert (repo / "adapters" / RUN).read_text() == f"adapter weights for {RUN}"
    assert list((repo / ".dvc" / "cache" / "runs").rglob("*"))  # origin's run record came down from S3
    # a lock that does not record the run (another branch trained it): the run-cache alone restores it
    (repo / "dvc.lock").unlink()
    (repo / "adapters" / RUN).unlink()
    done = dvc("repro", cwd=repo)
    assert f"Stage 'train@{RUN}' is cached - skipping run" in done.stdout, done.stdout
    assert (repo / "adapters" / RUN).read_text() == f"adapter weights for {RUN}"
    assert files_holding(repo, SECRET) == [".dvc/config.local"]


def workspace(repo: Path) -> dict[str, bytes]:
    """Every file of the clone and its DVC cache, less git's and DVC's own bookkeeping (.dvc/tmp)."""
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*"))
            if p.is_file() and ".git" not in p.parts and p.relative_to(repo).parts[:2] != (".dvc", "tmp")}


def test_a_wrong_bucket_is_named_and_nothing_is_touched(origin, endpoint, tmp_path):
    repo = clone(origin, tmp_path / "wrong-bucket")
    configure(repo, endpoint)
    dvc("remote", "modify", "--local", "team", "url", "s3://no-such-bucket/language-decoded", cwd=repo)
    before = workspace(repo)
    done = dvc("pull", f"train@{RUN}", cwd=repo, check=False)
    assert done.returncode != 0
    # DVC 3.67 does not name the bucket: it names the output and its hash as missing (README, "Remote storage")
    assert "failed to pull data from the cloud" in done.stderr and f"adapters/{RUN}" in done.stderr, done.stderr
    assert workspace(repo) == before and SECRET not in done.stderr + done.stdout

    # a push to it says the bucket does not exist, and keeps the cache and the workspace
    dvc("remote", "modify", "--local", "team", "url", f"s3://{BUCKET}/language-decoded", cwd=repo)
    dvc("pull", f"train@{RUN}", cwd=repo)
    dvc("remote", "modify", "--local", "team", "url", "s3://no-such-bucket/language-decoded", cwd=repo)
    before = workspace(repo)
    done = dvc("push", "--run-cache", cwd=repo, check=False)
    assert done.returncode != 0
    assert "NoSuchBucket" in done.stderr and "failed to push data to the cloud" in done.stderr, done.stderr
    assert workspace(repo) == before


def test_missing_credentials_are_named_and_nothing_is_touched(origin, endpoint, tmp_path):
    repo = clone(origin, tmp_path / "no-credentials")
    configure(repo, endpoint, credentials=False)
    before = workspace(repo)
    done = dvc("pull", f"train@{RUN}", cwd=repo, check=False)
    assert done.returncode != 0
    assert "Unable to locate credentials" in done.stderr, done.stderr
    assert workspace(repo) == before
