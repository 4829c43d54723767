"""Run the DVC command line with ``dvc.lock`` read for update by the C YAML parser and written by the C emitter.

    python -m tools.dvc_fast_lock repro --single-item train@<run>   # DVC with the patches below
    dvc repro                                                       # the same, through the installed .pth

The patches are installed by ``python -m tools.dvc_fast_lock``, by tools.repro (which runs each stage's DVC in
a fork of itself), and at the start of every ``dvc`` command of an environment where the project is installed:
setup.py puts ``language_decoded_repro-dvc.pth`` into site-packages, whose one line calls
:func:`start_with_dvc` (``LDR_FAST_LOCK=0``: DVC as it is).

After every stage DVC rewrites ``dvc.lock``: it reads the whole file with ruamel's round-trip
parser, which keeps comments and is pure Python, updates the stage's entry and dumps it again.
On the smoke pipeline's 6,600-line lock that read took 0.7 s of a 2 s stage bookkeeping, under
the repository lock, for each of 77 stages (pyinstrument; treeverse/dvc#2671 and #10942 describe
the same cost). DVC writes ``dvc.lock`` itself and puts no comments in it, so this module reads it
with ruamel's C-based safe parser instead, and a plain mapping dumps to the same bytes
(tests/test_dvc_fast_lock.py checks both on this repository's lock and through a real ``dvc repro``). Every other YAML file, ``dvc.yaml`` and ``params.yaml`` included,
is read and written as DVC does. If DVC no longer has the functions this replaces (or PyYAML lacks
libyaml), it runs unchanged (the same bytes, about 2 s slower a stage) and says so on stderr at every
start, so the lost speed-up is seen.

DVC then dumps the whole lock again with ruamel's pure-Python emitter: 1.4 s for the 12,000-line
lock, every stage. This module writes ``dvc.lock`` with libyaml's C emitter (PyYAML's, 0.2 s) set up
to DVC's choices: YAML 1.2 implicit types (ruamel's own resolver table, so ``1e5`` or an all-digit
md5 is quoted exactly when DVC quotes it), insertion order, ``key:`` for None in a mapping and
``- `` in a list, floats as ruamel writes them. The two emitters agree byte for byte except where
ruamel differs from libyaml, which tests/test_dvc_fast_lock.py found by comparing both on random
strings: a line over 80 characters (ruamel folds it, libyaml does not), a string with a ``'`` (ruamel
double-quotes it), a line break, a character outside the BMP (libyaml escapes it), a key over 80
bytes (libyaml counts the 128 limit of a simple key in bytes, ruamel in characters) and shared
objects (anchors). The lock is written piece by piece (a stage entry, else its keys, else a list
item or scalar): a piece that meets any of these, or holds a type other than dict, list, str, int,
float, bool or None, is written by DVC's own dumper, so the file is always DVC's bytes; only the
speed changes (on this repository's lock 27 of 83 entries hold a folded line). The same test compares both on
this repository's lock and on a lock from a real ``dvc repro``.

Two more costs of DVC's bookkeeping are cut the same way, without changing what it decides or writes:
DVC parses the whole lock (1.2 s; ruamel's constructor is Python) once or twice a command, so a lock
this module parsed or wrote before and unchanged since (same sha256) is a copy of that parse, kept
in the process and in ``.dvc/tmp/fast-lock.marshal`` for the next stage's process; and a no-op
``repro`` parsed params.yaml again for each of 81 stages and found each of its 930 keys by dpath's
walk of the whole tree (_install_params).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path, PurePath, PureWindowsPath

LOCK_NAME = "dvc.lock"


PATCHED = "dvc.utils.serialize._yaml.parse_yaml_for_update"
PATCHED_DUMP = "dvc.utils.serialize._yaml._dump"
PATCHED_PARAMS = "dvc.dependency.param.read_param_file"
WIDTH = 80  # ruamel's default line width, which DVC keeps: a longer line is folded by ruamel only
# Where libyaml's emitter and ruamel's part ways (see the module's docstring): such a string goes to DVC's dumper.
_UNSAFE_CHARS = frozenset("'\r\n\x85\u2028\u2029")
_SCALARS = (str, int, float, bool, type(None))


def _emitter():
    """PyYAML's C dumper with ruamel's YAML 1.2 resolver and DVC's representation of None, floats and order."""
    import yaml
    from ruamel.yaml import resolver as ruamel_resolver
    from yaml._yaml import CEmitter

    class Resolver(yaml.resolver.BaseResolver):
        yaml_implicit_resolvers: dict = {}

    for versions, tag, regexp, first in ruamel_resolver.implicit_resolvers:
        if (1, 2) in versions:  # DVC's dumper resolves as YAML 1.2 (ruamel's VersionedResolver, no version set)
            Resolver.add_implicit_resolver(tag, regexp, first)

    class Representer(yaml.representer.SafeRepresenter):
        def represent_none(self, data):
            return self.represent_scalar("tag:yaml.org,2002:null", "")  # ruamel: `key:`, not `key: null`

        def represent_float(self, data):  # ruamel's SafeRepresenter under YAML 1.2: no `.0` put before an exponent
            if data != data:
                value = ".nan"
            elif data in (float("inf"), float("-inf")):
                value = ".inf" if data > 0 else "-.inf"
            else:
                value = repr(data).lower()
            return self.represent_scalar("tag:yaml.org,2002:float", value)

    Representer.add_representer(type(None), Representer.represent_none)
    Representer.add_representer(float, Representer.represent_float)

    class Dumper(CEmitter, Representer, Resolver):
        def __init__(self, stream):
            CEmitter.__init__(self, stream, allow_unicode=True)
            Representer.__init__(self, default_flow_style=False, sort_keys=False)
            Resolver.__init__(self)

    return Dumper


_DUMPER = None
_SEQUENCE_NONE = None


def _plain(value, seen: set) -> bool:
    """True where every string and type in ``value`` is one both emitters write the same; no object twice."""
    kind = type(value)
    if kind is str:
        return not (_UNSAFE_CHARS.intersection(value) or (value and max(value) > "\uffff"))
    if kind in _SCALARS:
        return True
    if kind is not dict and kind is not list:
        return False  # ruamel's CommentedMap (comments), OrderedDict, tuples...: DVC's dumper
    if id(value) in seen:
        return False  # ruamel writes an anchor
    seen.add(id(value))
    if kind is list:
        return all(_plain(item, seen) for item in value)
    return all(type(key) is str and len(key.encode("utf-8")) <= WIDTH and _plain(key, seen) and _plain(item, seen)
               for key, item in value.items())  # libyaml measures a simple key's 128-limit in bytes, ruamel in chars


def _longest(value) -> int:
    """About the longest line ``value`` makes, less its indent: a hint only (every piece's lines are measured)."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is dict:  # `key: value` on one line, a block under its key two further in
        return max((len(key) + 2 + _longest(item) if type(item) is str else max(len(key), _longest(item) + 2)
                    for key, item in value.items()), default=0)
    if kind is list:
        return max((_longest(item) + 2 for item in value), default=0)
    return 0


def _shared(value, seen: set) -> bool:
    """True where a dict, OrderedDict or list occurs twice in ``value`` (ruamel would write an anchor and an alias)."""
    kind = type(value)
    if kind is not dict and kind is not list and kind is not OrderedDict:
        return False
    if id(value) in seen:
        return True
    seen.add(id(value))
    return any(_shared(item, seen) for item in (value if kind is list else value.values()))


def _as_dicts(value):
    """``value`` with each OrderedDict a dict, in order: DVC's dumper writes one as a dict (``_get_yaml``), and
    DVC's lock entry for a stage is one (``dvc.stage.serialize.to_lockfile``). As a dict, the entry is written
    by libyaml and kept for the next read, as the parser gives it back; as an OrderedDict, neither was."""
    kind = type(value)
    if kind is dict or kind is OrderedDict:
        return {key: _as_dicts(item) for key, item in value.items()}
    if kind is list:
        return [_as_dicts(item) for item in value]
    return value


def _c_dump(data: dict) -> str | None:
    """``data`` (a one-key mapping) by libyaml in DVC's layout, or None where a line would pass ruamel's width."""
    import io
    import re

    global _DUMPER, _SEQUENCE_NONE
    if _DUMPER is None:
        _DUMPER, _SEQUENCE_NONE = _emitter(), re.compile(r"^( *)-$", re.M)
    stream = io.StringIO()
    dumper = _DUMPER(stream)
    try:
        dumper.open()
        dumper.represent(data)
        dumper.close()
    finally:
        dumper.dispose()
    text = _SEQUENCE_NONE.sub(r"\1- ", stream.getvalue())  # ruamel writes None in a list as `- ` (libyaml: `-`)
    if any(len(line) > WIDTH for line in text.splitlines()):
        return None
    return text


def _wrap(chain: list, value):
    for key in reversed(chain):
        value = {key: value}
    return value


def _tail(text: str, lines: int) -> str:
    return text.split("\n", lines)[lines] if lines else text


def _text(piece, dvc_dump, c_first: bool = True) -> str:
    """``piece`` in DVC's bytes: by libyaml where it writes the same, else by ``dvc_dump`` (DVC's dumper)."""
    import io

    text = _c_dump(piece) if c_first and _plain(piece, set()) else None
    if text is None:
        out = io.StringIO()
        dvc_dump(piece, out)
        text = out.getvalue()
    return text


# the text of each stage's lock entry as last written, by (stage, repr of its entry): DVC rewrites all of
# dvc.lock after every stage, and in one `dvc repro` all but one entry are the same as the last time
_ENTRIES: dict[tuple, str] = {}
MAX_ENTRIES = 4000


def _piece(chain: list, value, dvc_dump, plain: bool = False) -> str:
    """The lines DVC writes for the last key of ``chain`` and its ``value``, nested under the keys before it.

    A block mapping's or list's lines do not depend on their siblings (no anchors: see dump_lock), so DVC's
    text for a whole mapping is its keys' pieces one after the other, and a key's is its header line and its
    items'. What libyaml cannot write as DVC does is split down to the list item or scalar that needs it."""
    depth = len(chain)
    if plain and depth == 2 and chain[0] == "stages":  # one stage's entry (plain data): the same as last time?
        memo = (dvc_dump, chain[1], repr(value))  # repr tells plain values apart (types, order, floats) as YAML does
        if memo not in _ENTRIES:
            if len(_ENTRIES) >= MAX_ENTRIES:
                _ENTRIES.clear()
            _ENTRIES[memo] = _piece_uncached(chain, value, dvc_dump)
        return _ENTRIES[memo]
    return _piece_uncached(chain, value, dvc_dump, plain)


def _piece_uncached(chain: list, value, dvc_dump, plain: bool = False) -> str:
    depth = len(chain)
    container = type(value) in (dict, list) and value
    # the top level and `stages` are split anyway (no whole-file try), and so is a block whose longest string
    # will likely make a line pass the width: trying libyaml on it first only to split it costs half the time
    if not container or depth >= 2 and _longest(value) + 2 * depth <= WIDTH:
        text = _c_dump(_wrap(chain, value)) if _plain(_wrap(chain, value), set()) else None
        if text is not None:
            return _tail(text, depth - 1)
    if container:
        header = _tail(_text(_wrap(chain, None), dvc_dump), depth - 1)  # `key:` as DVC writes it over a block
        if len(header) <= WIDTH and header.count("\n") == 1 and header.rstrip("\n").endswith(":"):
            if type(value) is dict:
                return header + "".join(_piece([*chain, key], item, dvc_dump, plain) for key, item in value.items())
            return header + "".join(_tail(_text(_wrap(chain, [item]), dvc_dump), depth) for item in value)
    return _tail(_text(_wrap(chain, value), dvc_dump, c_first=False), depth - 1)


def dump_lock(data, stream, dvc_dump) -> None:
    """Write ``data`` as ``dvc_dump`` (DVC's dumper) would: libyaml writes every piece it writes byte for byte
    as DVC does (see the module's docstring), ``dvc_dump`` the rest."""
    if type(data) is not dict or not data or _shared(data, set()):  # anchors may span pieces: DVC writes it all
        return dvc_dump(data, stream)
    data = _as_dicts(data)  # a copy: nothing in it is shared
    plain = _plain(data, set())  # then each stage's entry is written once per process and the lock kept
    text = "".join(_piece([key], value, dvc_dump, plain) for key, value in data.items())
    stream.write(text)
    if plain:
        _remember(getattr(stream, "name", None), text, data, plain=True)


# --- the parsed lock kept between reads and processes ------------------------------------------------------------

CACHE_NAME = "fast-lock.marshal"  # in the workspace's .dvc/tmp, which git and DVC ignore
_kept: dict = {}  # path -> (sha256 of the text, the parsed lock as marshal bytes)


def _copy(kept: bytes):
    """A new copy of a kept parse (DVC edits what it reads): marshal, in C, about 30 times a Python copy."""
    import marshal

    return marshal.loads(kept)


def _cache_file(path) -> Path | None:
    tmp = Path(str(path)).parent / ".dvc" / "tmp"
    return tmp / CACHE_NAME if tmp.is_dir() else None


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _remember(path, text: str, data, plain: bool = False) -> None:
    """Keep ``data`` as the parse of ``text``, here and in .dvc/tmp for the next process (tools.repro runs each
    stage as one). Only plain data (dict, list, str, int, float, bool, None; nothing shared), whose parse is
    itself: what DVC's safe parser returns for a lock, and what dump_lock writes, whose bytes parse back to it."""
    if path is None or type(data) is not dict or not (plain or _plain(data, set())):
        return
    import marshal
    import os

    digest = _digest(text)
    _kept[str(path)] = (digest, marshal.dumps(data))
    cache = _cache_file(path)
    if cache is None:
        return
    partial = cache.with_name(f"{CACHE_NAME}.{os.getpid()}")
    try:
        partial.write_bytes(marshal.dumps((digest, _kept[str(path)][1])))
        os.replace(partial, cache)  # whole or not at all, for a stage running beside this one
    except (OSError, ValueError):
        partial.unlink(missing_ok=True)


def _recall(path, text: str):
    """A copy of the kept parse of ``text`` (this process's, else .dvc/tmp's), or None."""
    import marshal

    digest = _digest(text)
    kept = _kept.get(str(path))
    if kept is None or kept[0] != digest:
        cache = _cache_file(path)
        try:
            kept = marshal.loads(cache.read_bytes()) if cache is not None else None
        except (OSError, ValueError, EOFError, TypeError):
            kept = None
        if not (type(kept) is tuple and len(kept) == 2 and kept[0] == digest and type(kept[1]) is bytes):
            return None
        _kept[str(path)] = kept
    try:
        return _copy(kept[1])
    except (ValueError, EOFError, TypeError):  # a damaged cache file: parsed again
        _kept.pop(str(path), None)
        return None


def _install_parse(_yaml) -> None:
    """DVC parses the whole lock (1.2 s, ruamel's constructor in Python) once or twice a command; a lock this
    module parsed or wrote before, unchanged since (the same sha256), is a copy of the kept parse instead."""
    from dvc.utils import serialize, strictyaml

    original = _yaml.parse_yaml
    if getattr(original, "fast_lock", False):
        return

    def parse_yaml(text, path, typ="safe"):
        if typ != "safe" or PurePath(str(path)).name != LOCK_NAME:
            return original(text, path, typ)
        data = _recall(path, text)
        if data is None:
            data = original(text, path, typ)
            _remember(path, text, data)
        return data

    parse_yaml.fast_lock = True
    for module in (_yaml, serialize, strictyaml):
        if getattr(module, "parse_yaml", None) is original:
            module.parse_yaml = parse_yaml


def install() -> bool:
    """Route DVC's read-for-update and dump of ``dvc.lock`` to the C parser and emitter, and its params reads to
    _install_params; False where DVC's layout differs (then none is patched)."""
    try:
        from dvc.dependency import param
        from dvc.utils.serialize import _yaml
    except ImportError:
        return False
    original = getattr(_yaml, "parse_yaml_for_update", None)
    if original is None or getattr(param, "read_param_file", None) is None or not _install_dump(_yaml):
        return False
    _install_params()
    _install_parse(_yaml)
    if getattr(original, "fast_lock", False):
        return True

    def parse_yaml_for_update(text, path):
        if PurePath(str(path)).name == LOCK_NAME:
            return _yaml.parse_yaml(text, path, typ="safe")
        return original(text, path)

    parse_yaml_for_update.fast_lock = True
    _yaml.parse_yaml_for_update = parse_yaml_for_update
    return True


def _install_dump(_yaml) -> bool:
    original = getattr(_yaml, "_dump", None)
    if original is None or getattr(original, "fast_lock", False):
        return original is not None
    try:
        _emitter()
    except (ImportError, AttributeError):  # no PyYAML with libyaml, or ruamel moved its resolver table
        return False

    def _dump(data, stream, *args, **kwargs):
        if not args and not kwargs and PurePath(str(getattr(stream, "name", ""))).name == LOCK_NAME:
            return dump_lock(data, stream, original)
        return original(data, stream, *args, **kwargs)

    _dump.fast_lock = True
    _dump.dvc_dump = original
    _yaml._dump = _dump
    return True


def prepare_entries(path: Path) -> None:
    """Put the text of each stage's entry of the lock at ``path`` into this process's memo, writing nothing.

    tools.repro forks each stage's DVC from one process: called there before each fork, it leaves the child's
    dump of the lock only the entry that child changed to write (the rest were written by other children).
    Costs a kept parse and one memoised dump; does nothing where the patches are not installed."""
    import io

    from dvc.utils.serialize import _yaml

    dvc_dump = getattr(_yaml._dump, "dvc_dump", None)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return
    if dvc_dump is None or not text:
        return
    data = _yaml.parse_yaml(text, str(path))
    if type(data) is dict:
        dump_lock(data, io.StringIO(), dvc_dump)  # a stream with no name: nothing kept for the next read


def _param(config, key_path: str):
    """``dpath.get(config, key_path, separator=".")`` without its walk over the whole params tree (3 ms a key,
    930 keys in a no-op): a plain path of dict keys is looked up directly; anything else (a glob, a list index,
    a missing key, a non-str key) goes to dpath itself, which answers or raises as DVC expects."""
    node = config
    if not any(char in key_path for char in "*?[]\\"):
        for segment in key_path.split("."):
            if type(node) is not dict or not segment or segment not in node:
                break
            node = node[segment]
        else:
            return node
    import dpath

    return dpath.get(config, key_path, separator=".")


def _install_params() -> bool:
    """Read a local params file once per process while it stays the same, and look its keys up directly.

    A no-op `dvc repro` checks each stage's params: DVC parses params.yaml again for each of the 81
    stages that list any (45 ms each) and finds each of 930 keys by dpath's walk of the whole tree. The
    parsed file is kept by path with its mtime, size and inode; every call deep-copies what it returns (one
    memo per call, so objects shared within a stage's keys stay shared, as DVC's fresh parse has them, and
    nothing is shared between stages, which would put anchors in dvc.lock)."""
    try:
        from dvc.dependency import param
        from dvc.fs import LocalFileSystem
    except ImportError:
        return False
    original = getattr(param, "read_param_file", None)
    if original is None or getattr(original, "fast_lock", False):
        return original is not None
    parsed: dict = {}

    def read_param_file(fs, path, key_paths=None, flatten=False, **load_kwargs):
        if load_kwargs or not key_paths or not flatten or not isinstance(fs, LocalFileSystem):
            return original(fs, path, key_paths, flatten, **load_kwargs)
        import copy
        import os

        try:
            stat = os.stat(path)
        except OSError:
            return original(fs, path, key_paths, flatten)  # DVC's own error for a missing file
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if parsed.get(path, (None,))[0] != stamp:
            parsed[path] = (stamp, param.load_path(path, fs))
        config, memo, values = parsed[path][1], {}, {}
        for key_path in key_paths:
            try:
                values[key_path] = copy.deepcopy(_param(config, key_path), memo)
            except KeyError:
                continue
        return values

    read_param_file.fast_lock = True
    param.read_param_file = read_param_file
    return True


def install_or_warn() -> None:
    if not install():
        from dvc import __version__

        print(f"WARNING: tools.dvc_fast_lock is inactive: DVC {__version__} has no {PATCHED}, {PATCHED_DUMP} or "
              f"{PATCHED_PARAMS} (or PyYAML has no libyaml); DVC runs as it is: dvc.lock is read and written in pure "
              "Python (same bytes, about 4 s slower a stage)", file=sys.stderr, flush=True)


def is_dvc_command(argv: list[str]) -> bool:
    """Whether this interpreter's command line (``sys.orig_argv``) is the DVC command line: the ``dvc``
    script, or ``python [options] -m dvc``."""
    for index, word in enumerate(argv[1:], start=1):
        if word == "-m":
            return argv[index + 1:index + 2] == ["dvc"]
        if not word.startswith("-"):  # the script: `python /venv/bin/dvc ...` (a console script's shebang)
            return PureWindowsPath(word).name in ("dvc", "dvc.exe")  # splits at `/` and `\\` alike
    return False


def start_with_dvc() -> None:
    """Install the patches at the start of every ``dvc`` command of an environment that has this project
    installed, so that the README's plain ``dvc repro`` gets them too: ``language_decoded_repro-dvc.pth``
    (site-packages; setup.py puts it there) calls this before DVC's first import. ``LDR_FAST_LOCK=0`` leaves
    DVC as it is (the tests' reference for DVC's own bytes). It never stops DVC: where anything here fails,
    DVC runs unpatched."""
    import os

    if os.environ.get("LDR_FAST_LOCK", "1") == "0" or not is_dvc_command(getattr(sys, "orig_argv", [])):
        return
    try:
        install_or_warn()
    except Exception as error:  # noqa: BLE001 - a broken speed-up must not break DVC
        print(f"WARNING: tools.dvc_fast_lock is inactive: {type(error).__name__}: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from dvc.cli import main as dvc_main

    install_or_warn()
    return dvc_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
