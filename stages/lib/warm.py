"""Run ``python -m stages.<name>`` in a fork of an interpreter that has imported torch and its kin already.

Why: on a 2-core machine, importing torch, transformers and peft takes 10-15 s of one core, and the smoke
pipeline starts about 40 processes that need them, for a few seconds of work each (issue 18's profile of a
``train`` stage: 22.5 of 29 s were imports). So the first stage of a build starts a *warm interpreter*: a
background process that imports those libraries (``PRELOAD``) once and then, for each stage command,
forks a child that becomes that command. The stage's own code is imported afresh in every child from the
stage's working directory (nothing of this repository is kept in the warm process), so an edit to the code
is seen at the next stage, as in a plain process. The command that finds no warm interpreter ready starts one
in the background and runs as a plain process itself (saying so in one line), as does any command that comes
while it is still importing: a stage that needs no torch (the first ones of a build) is not held up by its
15 s of imports. ``LDR_WARM_WAIT=1`` makes such a command wait for it instead.

What the child sees is what ``python -m stages.<name> ARGS`` would see: the command's argv, working directory,
environment, umask, and its stdin, stdout and stderr (the file descriptors themselves, passed over a Unix
socket: DVC's pipes and log files receive the output directly). Its exit status is the command's: the client
(the process DVC started) waits for it and exits with it, and passes SIGTERM, SIGINT and SIGHUP on. A client
that dies takes its child with it, and so does a warm interpreter that dies (the client then exits 1, saying
that the stage's outcome is unknown). Import-time warnings are not repeated in each child (they were printed
once, in the warm process's log).

One warm interpreter serves only commands that would have imported the libraries in the same state: its
key is the interpreter, its installed packages (the site-packages folders' modification times, which
``pip install`` changes), this module's bytes, and the whole environment except variables that change for
every command (``VOLATILE``: DVC's ``DVC_STAGE``, pytest's ``PYTEST_CURRENT_TEST``...). Any other difference
starts another warm interpreter. It exits after ``IDLE_SECONDS`` with no command. The outputs are the bytes a
plain process writes (tests/test_warm.py compares them on a real ``train`` and ``evaluate``).

Off when ``LDR_WARM=0``, off on machines with an NVIDIA device (a fork must not inherit an initialised CUDA
driver, and a GPU stage's minutes dwarf its imports) and off where there is no ``fork`` (Windows, and macOS,
whose system frameworks are not fork-safe). ``LDR_WARM_PRELOAD=a,b`` names other modules to preload. Where it is off or cannot start, the command runs as a plain
process: the warm interpreter is a speed-up, never a requirement. Its log: ``$TMPDIR/ldr-warm-<uid>/<key>.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWITCH = "LDR_WARM"
# a comma-separated list of modules replaces PRELOAD (part of the key, as every variable is)
PRELOAD_VARIABLE = "LDR_WARM_PRELOAD"
# "1": a command that finds no warm interpreter ready waits for one to start, instead of running plainly
WAIT_VARIABLE = "LDR_WARM_WAIT"
IDLE_SECONDS = 120.0
# with LDR_WARM_WAIT=1: how long a command waits for the warm interpreter it started before it runs on its own
START_TIMEOUT_SECONDS = 180.0
# imported once by the warm interpreter: what the stages import, slowest first (a module missing here
# is imported by the child itself: slower, never wrong)
PRELOAD = (
    "torch",
    "transformers",
    "transformers.models.auto.modeling_auto",
    "transformers.models.cohere2.modeling_cohere2",
    "transformers.models.cohere.tokenization_cohere",
    "transformers.trainer",
    "transformers.generation.utils",
    "peft",
    "tokenizers",
    "safetensors.torch",
    "huggingface_hub",
    "pyarrow.parquet",
    "pandas",
    "scipy.stats",
    "matplotlib.pyplot",
    "pydantic",
    "yaml",
)
# what a child imports afresh from its own working directory
PROJECT_PACKAGES = ("stages", "tools", "benchmarks", "tests")
# variables that differ between commands without changing any import
VOLATILE = {"_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", WAIT_VARIABLE}
VOLATILE_PREFIXES = ("DVC_", "PYTEST_")
STAGE_MODULE = re.compile(r"stages\.[a-z_0-9]+")
HEADER = struct.Struct("!I")


class Unavailable(Exception):
    """No warm interpreter could take the command: it runs as a plain process."""


# --------------------------------------------------------------------------- where and who


def enabled(environ=os.environ) -> bool:
    """Whether commands may go to a warm interpreter on this machine."""
    if environ.get(SWITCH, "1") == "0":
        return False
    if not sys.platform.startswith("linux") or not hasattr(os, "fork") or not hasattr(socket, "AF_UNIX"):
        return False
    return not Path("/dev/nvidiactl").exists()


def stage_command(orig_argv: list[str]) -> tuple[str, list[str]] | None:
    """``(module, args)`` when this process is ``python -m stages.<name> ARGS``, with no interpreter option."""
    if len(orig_argv) >= 3 and orig_argv[1] == "-m" and STAGE_MODULE.fullmatch(orig_argv[2]):
        return orig_argv[2], list(orig_argv[3:])
    return None


def key(environ=os.environ) -> str:
    """What the libraries' import-time state depends on, hashed: equal keys may share a warm interpreter."""
    import site

    stable_env = sorted(
        (name, value)
        for name, value in environ.items()
        if name not in VOLATILE and not name.startswith(VOLATILE_PREFIXES)
    )
    packages = []
    for folder in site.getsitepackages():
        try:
            packages.append((folder, os.stat(folder).st_mtime_ns))
        except OSError:
            continue
    text = json.dumps(
        {"python": [sys.executable, sys.version], "packages": packages, "env": stable_env,
         "protocol": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def folder() -> Path:
    """The user's private folder for warm interpreters' sockets and logs (refused if anyone else could write it)."""
    path = Path(tempfile.gettempdir()) / f"ldr-warm-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise Unavailable(f"{path} is not private to this user")
    return path


# --------------------------------------------------------------------------- client: the process DVC started


def hand_over() -> None:
    """If this process is a stage command and a warm interpreter can run it, run it there and exit with its status.

    Called from ``stages/__init__.py``, before the stage module (and torch) is imported. Returns, and the
    command runs here, when it is off or no warm interpreter could take the command."""
    command = stage_command(getattr(sys, "orig_argv", []))
    if command is None or not enabled():
        return
    module, args = command
    try:
        conn, pid = _start_child(module, args)
    except Unavailable as why:
        print(f"warm interpreter not used ({why}); running as a plain process", file=sys.stderr)
        return
    _exit_like(_wait_for_child(conn, pid))


def _start_child(module: str, args: list[str]) -> tuple[socket.socket, int]:
    try:
        path = folder() / key()  # its .log and .lock; the socket has the key as its abstract name
        conn = _connect(path)
        if conn is None and os.environ.get(WAIT_VARIABLE) == "1":
            conn = _connect_after_start(path)
        elif conn is None:  # this command runs plainly; the next ones find the warm interpreter ready
            if not _held(path.with_suffix(".lock")):
                _start_server(path)
            raise Unavailable("one is starting for the next stage commands")
        request = {"module": module, "args": args, "cwd": os.getcwd(), "env": dict(os.environ), "umask": _umask()}
        body = json.dumps(request).encode()
        socket.send_fds(conn, [HEADER.pack(len(body)) + body], [0, 1, 2])
        reply = _read_line(conn)
    except OSError as error:
        raise Unavailable(str(error)) from error
    if not reply or "pid" not in reply:
        raise Unavailable(f"the warm interpreter did not start the command (see {path.with_suffix('.log')})")
    return conn, reply["pid"]


def address(path: Path) -> str:
    """The socket's name in Linux's abstract namespace: no file, so no length limit from a long TMPDIR (a
    socket path has about 100 bytes) and nothing left behind; both ends check that the other is this user."""
    return f"\0ldr-warm-{os.getuid()}-{path.stem}"


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1] == os.getuid()


def _connect(path: Path) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(address(path))
    except OSError:
        conn.close()
        return None
    if not _same_user(conn):
        conn.close()
        return None
    return conn


def _held(lock: Path) -> bool:
    """Whether a warm interpreter holds this key's lock: it is importing or serving (serve() takes it first)."""
    import fcntl

    try:
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when closed
    except OSError:
        return True
    return False


def _start_server(path: Path) -> subprocess.Popen:
    """Start a warm interpreter for this key in the background (a second one started at the same time gives way)."""
    log = open(path.with_suffix(".log"), "ab")
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from stages.lib.warm import serve; sys.exit(serve(sys.argv[1]))", str(path)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
    )
    log.close()
    return server


def _connect_after_start(path: Path) -> socket.socket:
    """Start a warm interpreter for this key and wait for it (``LDR_WARM_WAIT=1``)."""
    server = _start_server(path)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        conn = _connect(path)
        if conn is not None:
            return conn
        if server.poll() not in (None, 0):
            raise Unavailable(f"the warm interpreter exited with {server.returncode} (see {path.with_suffix('.log')})")
        time.sleep(0.05)
    raise Unavailable(f"no warm interpreter answered within {START_TIMEOUT_SECONDS:.0f} s")


def _wait_for_child(conn: socket.socket, pid: int) -> int:
    """The child's exit code, or minus the signal that killed it; signals to this process go to it meanwhile."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    reply = _read_line(conn)
    if reply is None or "status" not in reply:
        print(f"the warm interpreter stopped before stage process {pid} ended: its outcome is unknown; "
              f"rerun with {SWITCH}=0 to run it as a plain process", file=sys.stderr)
        return 1
    return reply["status"]


def _exit_like(status: int) -> None:
    """Exit as the child did: with its code, or killed by its signal."""
    sys.stdout.flush()
    sys.stderr.flush()
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        time.sleep(1)  # the signal is delivered before this ends
    os._exit(status if status >= 0 else 128 - status)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _read_line(conn: socket.socket) -> dict | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)  # a signal forwarded meanwhile does not end it (PEP 475)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


# --------------------------------------------------------------------------- server: the warm interpreter


def serve(path: str | Path) -> int:
    """Import ``PRELOAD``, then fork a child for each command until ``IDLE_SECONDS`` pass with none."""
    import fcntl
    import selectors

    path = Path(path)
    lock = open(path.with_suffix(".lock"), "w")
    while True:  # one server per key; a second one gives way once the first answers
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            probe = _connect(path)
            if probe is not None:
                probe.close()
                return 0
            time.sleep(0.1)
    started = time.monotonic()
    chosen = os.environ.get(PRELOAD_VARIABLE)
    for name in PRELOAD if chosen is None else [name.strip() for name in chosen.split(",") if name.strip()]:
        try:
            __import__(name)
        except Exception as error:  # noqa: BLE001 - a library that cannot load here is loaded (or not) by the child
            print(f"warm: not preloaded: {name}: {error!r}", file=sys.stderr)
    _keep_packages_distributions()
    print(f"warm: preloaded in {time.monotonic() - started:.1f} s, pid {os.getpid()}", file=sys.stderr, flush=True)
    os.chdir("/")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address(path))
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    last = time.monotonic()
    try:
        while children or time.monotonic() - last < IDLE_SECONDS:
            if selector.select(timeout=0.2):
                conn, _ = listener.accept()
                pid = _fork_child(conn, (listener, lock))
                if pid is None:
                    conn.close()
                else:
                    children[pid] = conn
            for pid, status in _reaped(children):
                with_status(children.pop(pid), status)
                last = time.monotonic()
    finally:
        listener.close()
    return 0


def _keep_packages_distributions() -> None:
    """Answer ``importlib.metadata.packages_distributions()`` once for every child: it parses the METADATA of
    every installed distribution (about 1 s with ~290 of them), and train's and evaluate's resume keys ask for
    it (stages/lib/fingerprint.py). What is installed is part of this interpreter's key, so the answer cannot
    change while it lives; each call gets its own copy, as from the function itself."""
    import importlib.metadata

    original = importlib.metadata.packages_distributions
    answer = original()

    def packages_distributions():
        return {name: list(dists) for name, dists in answer.items()}

    packages_distributions.__doc__ = original.__doc__
    importlib.metadata.packages_distributions = packages_distributions


def _reaped(children: dict[int, socket.socket]):
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            yield pid, status


def with_status(conn: socket.socket, wait_status: int) -> None:
    """Tell the client how its child ended: an exit code, or minus the signal that killed it."""
    try:
        conn.sendall(json.dumps({"status": os.waitstatus_to_exitcode(wait_status)}).encode() + b"\n")
    except OSError:
        pass  # the client is gone
    conn.close()


def _fork_child(conn: socket.socket, server_files) -> int | None:
    if not _same_user(conn):
        return None
    pid = os.fork()
    if pid:
        return pid
    for handle in server_files:  # the listening socket, and the lock a later warm interpreter must be able to take
        handle.close()
    try:
        _become_command(conn)
    except BaseException:  # noqa: BLE001 - whatever happens, the child never returns into the server's loop
        import traceback

        traceback.print_exc()
        os._exit(1)
    os._exit(1)


def _become_command(conn: socket.socket) -> None:
    """In the child: take the client's descriptors, directory and environment, then run the stage module."""
    import importlib
    import runpy
    import threading

    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    if not message:  # a connection that only checked the socket answers (a second interpreter giving way)
        os._exit(0)
    (length,) = HEADER.unpack(message[: HEADER.size])
    body = message[HEADER.size :]
    while len(body) < length:
        body += conn.recv(length - len(body))
    request = json.loads(body)
    os.setsid()
    _die_with_parent()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()
    os.environ.update(request["env"])
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.stdout.reconfigure(line_buffering=os.isatty(1), write_through=unbuffered)
    sys.stderr.reconfigure(line_buffering=True, write_through=unbuffered)
    for name in [name for name in sys.modules if name.split(".")[0] in PROJECT_PACKAGES]:
        del sys.modules[name]
    sys.path[0] = request["cwd"]
    importlib.invalidate_caches()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    threading.Thread(target=_die_with_client, args=(conn,), daemon=True).start()
    sys.argv = [request["module"], *request["args"]]
    code = _run(runpy, request["module"])
    if code < 0:  # as the interpreter ends on an uncaught KeyboardInterrupt: killed by SIGINT
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def _run(runpy, module: str) -> int:
    """Run the module as ``__main__`` and end as the interpreter would: threads joined, atexit run, streams flushed."""
    import atexit
    import threading
    import traceback

    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:  # noqa: BLE001 - printed as the interpreter prints an uncaught exception
        traceback.print_exc()
        code = 1
    threading._shutdown()  # what the interpreter does at exit: wait for non-daemon threads (executors' workers)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


def _die_with_parent() -> None:
    """A stage whose warm interpreter is gone ends too: its client is waiting to hear how it ended, and cannot."""
    import ctypes

    server = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != server:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _die_with_client(conn: socket.socket) -> None:
    """The client never writes after its request: end of file means it is gone, and its command with it."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)

