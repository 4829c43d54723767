"""The warm interpreter (stages/lib/warm.py): a stage command run in a fork of it behaves as a plain process.

The commands run in a scratch project holding this repository's ``stages`` package start (``__init__``,
numerics, warm) and small stage modules written here, with a private TMPDIR (so its own warm interpreter)
that preloads only what each test names, so a test costs a second, not torch's import."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages.lib import warm

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not warm.enabled({}), reason="no warm interpreter on this platform (no fork, or a GPU)")

ECHO = """
import json, os, sys
data = sys.stdin.read()
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "pid": os.getpid(), "ppid": os.getppid(),
                  "stdin": data, "env": os.environ.get("SOME_SETTING"), "name": __name__}))
print("to stderr", file=sys.stderr)
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""

HASH = """
import hashlib, torch
torch.manual_seed(0)
layer = torch.nn.Linear(64, 64)
optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-2)
for _ in range(3):
    loss = layer(torch.randn(8, 64)).pow(2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
print(hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in layer.parameters())).hexdigest())
"""


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "stages" / "lib").mkdir(parents=True)
    shutil.copy(ROOT / "stages" / "__init__.py", root / "stages" / "__init__.py")
    for name in ("__init__.py", "numerics.py", "warm.py"):
        shutil.copy(ROOT / "stages" / "lib" / name, root / "stages" / "lib" / name)
    (root / "stages" / "echo.py").write_text(ECHO)
    (root / "stages" / "boom.py").write_text("raise RuntimeError('the stage failed')\n")
    (root / "stages" / "wait.py").write_text(
        "import os, sys, time\nopen(sys.argv[1], 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    (root / "stages" / "hash_torch.py").write_text(HASH)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", warm.PRELOAD_VARIABLE)}
    # LDR_WARM_WAIT: the first command waits for the warm interpreter it starts, so that every command runs warm
    env.update({"TMPDIR": str(scratch), "LDR_WARM": "1", warm.PRELOAD_VARIABLE: "json", warm.WAIT_VARIABLE: "1"})
    return root, env  # its warm interpreter (its own: TMPDIR is part of the key) exits after IDLE_SECONDS


def run(project, module, *args, stdin="", **extra_env):
    root, env = project
    return subprocess.run([sys.executable, "-m", f"stages.{module}", *args], cwd=root, env={**env, **extra_env},
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_the_command_sees_its_own_argv_directory_environment_and_streams(project):
    done = run(project, "echo", "--run", "x y", stdin="some input", SOME_SETTING="42", EXIT_WITH="3")
    assert done.returncode == 3, done.stderr
    seen = json.loads(done.stdout)
    assert seen["argv"] == ["--run", "x y"]
    assert seen["cwd"] == str(project[0])
    assert seen["stdin"] == "some input"
    assert seen["env"] == "42"
    assert seen["name"] == "__main__"
    assert "to stderr" in done.stderr
    assert "warm interpreter not used" not in done.stderr


def test_commands_share_one_warm_interpreter_and_see_code_edits(project):
    first = json.loads(run(project, "echo").stdout)
    (project[0] / "stages" / "echo.py").write_text(ECHO.replace('"name": __name__', '"name": "edited"'))
    second = json.loads(run(project, "echo").stdout)
    assert first["ppid"] == second["ppid"]  # the same warm interpreter forked both
    assert first["pid"] != second["pid"]
    assert second["name"] == "edited"  # the stage's code is imported afresh in each child


def test_without_waiting_the_first_command_runs_plainly_and_starts_one_for_the_next(project):
    root, env = project
    env = {**env, warm.WAIT_VARIABLE: "0"}
    first = run((root, env), "echo")
    assert first.returncode == 0 and json.loads(first.stdout)["ppid"] == os.getpid()  # a plain process
    assert "warm interpreter not used (one is starting for the next stage commands)" in first.stderr
    deadline, later = time.monotonic() + 60, None
    while time.monotonic() < deadline:  # the warm interpreter it started answers once it has imported PRELOAD
        later = run((root, env), "echo")
        if json.loads(later.stdout)["ppid"] != os.getpid():
            break
        time.sleep(0.2)
    assert later.returncode == 0 and json.loads(later.stdout)["ppid"] != os.getpid(), later.stderr  # a warm fork
    assert "not used" not in later.stderr


def test_off_runs_a_plain_process(project):
    root, env = project
    done = subprocess.Popen([sys.executable, "-m", "stages.echo"], cwd=root, env={**env, "LDR_WARM": "0"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    out, _ = done.communicate(timeout=60)
    assert json.loads(out)["pid"] == done.pid


def test_a_failing_stage_prints_its_traceback_and_exits_1(project):
    done = run(project, "boom")
    assert done.returncode == 1
    assert "RuntimeError: the stage failed" in done.stderr


def test_sigterm_to_the_command_ends_the_stage(project, tmp_path):
    root, env = project
    pid_file = tmp_path / "stage.pid"
    client = subprocess.Popen([sys.executable, "-m", "stages.wait", str(pid_file)], cwd=root, env=env)
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and client.poll() is None
        time.sleep(0.05)
    stage_pid = int(pid_file.read_text())
    assert stage_pid != client.pid  # it runs in the warm interpreter's fork
    client.send_signal(signal.SIGTERM)
    assert client.wait(timeout=30) == -signal.SIGTERM  # as a plain process killed by SIGTERM
    deadline = time.monotonic() + 10
    while Path(f"/proc/{stage_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{stage_pid}").exists()


def test_torch_computes_the_same_bits_in_a_fork(project):
    """The risk of forking after importing torch: a thread pool or allocator state that changes the numbers."""
    warm_run = run(project, "hash_torch", **{warm.PRELOAD_VARIABLE: "torch"})
    plain = run(project, "hash_torch", LDR_WARM="0")
    assert warm_run.returncode == 0 and plain.returncode == 0, warm_run.stderr + plain.stderr
    assert warm_run.stdout == plain.stdout


def test_the_kept_packages_distributions_is_the_functions_own_answer(project):
    """The warm interpreter answers it once for all its children (fingerprint.py's resume keys ask for it)."""
    root, _ = project
    (root / "stages" / "dists.py").write_text(
        "import importlib.metadata, json, os\nfirst = importlib.metadata.packages_distributions()\n"
        "first['torch'].append('edited')  # a caller's edit reaches no other caller\n"
        "print(json.dumps([os.getppid(), importlib.metadata.packages_distributions()], sort_keys=True))\n")
    warm_run, plain = run(project, "dists"), run(project, "dists", LDR_WARM="0")
    assert warm_run.returncode == 0 and plain.returncode == 0, warm_run.stderr + plain.stderr
    (warm_parent, kept), (plain_parent, computed) = json.loads(warm_run.stdout), json.loads(plain.stdout)
    assert warm_parent != os.getpid() and plain_parent == os.getpid()  # a warm fork, and a plain process
    assert kept == computed and "edited" not in kept["torch"]


def test_only_a_plain_stage_module_command_is_handed_over():
    assert warm.stage_command(["python", "-m", "stages.train", "--run", "r"]) == ("stages.train", ["--run", "r"])
    assert warm.stage_command(["python", "-u", "-m", "stages.train"]) is None  # an interpreter option
    assert warm.stage_command(["python", "-m", "stages.lib.warm"]) is None
    assert warm.stage_command(["python", "-m", "tools.repro"]) is None
    assert warm.stage_command(["python", "-c", "import stages"]) is None


def test_the_key_ignores_per_command_variables_only():
    base = {"HOME": "/home/u", "HF_HUB_OFFLINE": "1"}
    same = warm.key({**base, "DVC_STAGE": "train@a", "PYTEST_CURRENT_TEST": "x", "PWD": "/elsewhere"})
    assert same == warm.key(base)
    assert warm.key({**base, "HF_HUB_OFFLINE": "0"}) != warm.key(base)
    assert warm.key({**base, "OMP_NUM_THREADS": "1"}) != warm.key(base)


def test_switch_off():
    assert not warm.enabled({"LDR_WARM": "0"})


def test_a_folder_others_can_write_is_refused_and_the_stage_runs_plainly(project):
    root, env = project
    shared = Path(env["TMPDIR"]) / f"ldr-warm-{os.getuid()}"
    shared.mkdir(exist_ok=True)
    shared.chmod(0o777)  # anyone could put a socket there that answers for a warm interpreter
    done = subprocess.run([sys.executable, "-m", "stages.echo"], cwd=root, env=env, input="", capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert "warm interpreter not used" in done.stderr and str(shared) in done.stderr
    assert json.loads(done.stdout)["ppid"] == os.getpid()  # a plain process, child of this test
    shared.chmod(0o700)


def test_a_warm_interpreter_that_dies_mid_stage_fails_the_command_and_ends_the_stage(project, tmp_path):
    root, env = project
    pid_file = tmp_path / "stage.pid"
    client = subprocess.Popen([sys.executable, "-m", "stages.wait", str(pid_file)], cwd=root, env=env,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and client.poll() is None
        time.sleep(0.05)
    stage_pid = int(pid_file.read_text())
    server_pid = int(Path(f"/proc/{stage_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert stage_pid != client.pid and server_pid not in (client.pid, os.getpid())  # it runs in a warm fork
    os.kill(server_pid, signal.SIGKILL)
    _, stderr = client.communicate(timeout=30)
    assert client.returncode == 1
    assert "outcome is unknown" in stderr and "LDR_WARM=0" in stderr
    deadline = time.monotonic() + 10
    while Path(f"/proc/{stage_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{stage_pid}").exists()
