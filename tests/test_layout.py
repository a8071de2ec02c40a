"""The shape of wgedge/, read with ast (as tests/test_subset.py reads imports): no module
reaches into another's private names, and no import cycle, whether an import sits at the top
of a module or inside a function."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT / "wgedge"


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules():
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imported(tree, name, known):
    """The wgedge modules `tree` (module `name`) imports, anywhere in it: a `from P import x`
    counts as P.x when that is a module, else as P."""
    package = name if (PKG / pathlib.Path(*name.split(".")[1:]) / "__init__.py").exists() \
        else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if not base.startswith("wgedge"):
                continue
            for a in node.names:
                full = base + "." + a.name
                out.add(full if full in known else base)
    out.discard(name)
    return out


def private_problems(tree, relpath, wgedge_aliases):
    """`from M import _x`, and `m._x` where m names another wgedge module, or `obj._x` for a
    private name no class or function of this module defines (another type's private)."""
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            own.add(node.value)  # __slots__ entries, getattr names
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wgedge"):
            problems += ["%s:%d imports %s.%s" % (relpath, node.lineno, node.module, a.name)
                         for a in node.names if a.name.startswith("_")
                         and not a.name.startswith("__")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            target = node.value.id if isinstance(node.value, ast.Name) else None
            if target in wgedge_aliases or (target not in ("self", "cls")
                                            and node.attr not in own
                                            and target not in STDLIB_ALIASES):
                problems.append("%s:%d uses %s.%s" % (relpath, node.lineno,
                                                      ast.unparse(node.value), node.attr))
    return problems


# Private names of the standard library that are its documented API (os._exit, sys._getframe).
STDLIB_ALIASES = {"os", "sys"}


def wgedge_aliases(tree, known):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wgedge"):
            names.update(a.asname or a.name for a in node.names
                         if node.module + "." + a.name in known)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names
                         if a.name.startswith("wgedge"))
    return names


def test_no_private_name_is_used_across_modules():
    known = modules()
    problems = []
    for path in known.values():
        tree = ast.parse(path.read_text(), str(path))
        problems += private_problems(tree, str(path.relative_to(ROOT)),
                                     wgedge_aliases(tree, known))
    assert problems == []


def find_cycle(graph):
    """One cycle of `graph` ({node: set of nodes}) as a list, or None."""
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def import_graph():
    known = modules()
    return {name: imported(ast.parse(path.read_text(), str(path)), name, known)
            for name, path in known.items()}


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_top_of_the_tree_reads_core_crypto_io_config_router_cli():
    top = {p.name for p in PKG.iterdir() if not p.name.startswith((".", "__pycache__"))}
    assert top == {"__init__.py", "__main__.py", "core", "crypto", "io", "config", "router",
                   "cli"}


def test_only_the_router_and_the_command_line_import_the_router():
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith(("wgedge.core", "wgedge.crypto", "wgedge.io", "wgedge.config")):
            assert not {d for d in deps if d.startswith(("wgedge.router", "wgedge.cli"))}, name


@pytest.mark.parametrize("source, problem", [
    ("from wgedge.router.manage import _secret\n", "imports wgedge.router.manage._secret"),
    ("from wgedge.router import manage\nmanage._secret()\n", "uses manage._secret"),
    ("def f(peer):\n    return peer._emit\n", "uses peer._emit"),
])
def test_the_private_name_check_finds(source, problem):
    tree = ast.parse(source)
    found = private_problems(tree, "x.py", wgedge_aliases(tree, modules()))
    assert len(found) == 1 and problem in found[0], found


def test_the_private_name_check_allows_a_modules_own_names():
    source = ("class A:\n    __slots__ = ('_n',)\n    def _f(self, other):\n"
              "        return other._n + self._f(other)\n")
    assert private_problems(ast.parse(source), "x.py", set()) == []


def test_the_cycle_check_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


MODULE_LINES = 420  # "~400": a module longer than this says why in its first lines
FUNCTION_LINES = 80
# The hot paths and unrolled primitives allowed to be longer; each says at its top (its
# module's or its own docstring) that it is written for speed.
LONG_FUNCTIONS = {("wgedge/core/device.py", "receive_trains"), ("wgedge/core/peer.py", "send_data"),
                  ("wgedge/io/offload.py", "coalesce"),
                  ("wgedge/crypto/pure/blake2s.py", "_compress"),
                  ("wgedge/crypto/pure/chacha20.py", "_double_rounds")}


def test_a_long_module_says_why_in_its_first_lines():
    problems = []
    for path in modules().values():
        text = path.read_text()
        if len(text.splitlines()) > MODULE_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if not re.search(r"\b\d+ lines\b", doc):
                problems.append("%s: %d lines" % (path.relative_to(ROOT),
                                                  len(text.splitlines())))
    assert problems == []


def test_no_long_function_but_the_named_hot_paths():
    long = set()
    for path in modules().values():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.end_lineno - node.lineno + 1 > FUNCTION_LINES:
                long.add((rel, node.name))
    assert long <= LONG_FUNCTIONS, sorted(long - LONG_FUNCTIONS)
    for rel, name in LONG_FUNCTIONS:
        tree = ast.parse((ROOT / rel).read_text())
        fn = [n for n in ast.walk(tree) if getattr(n, "name", None) == name]
        assert fn, "%s: %s no longer exists: take it off LONG_FUNCTIONS" % (rel, name)
        said = (ast.get_docstring(fn[0]) or "") + (ast.get_docstring(tree) or "")
        assert "speed" in said, "%s: %s is long but does not say it is written for speed" % (
            rel, name)


# --- every file wgedge writes goes through wgedge/router/atomicfile.py ---------------------------
# The writes that are not a file's contents, each with the reason it is not: appends to a log,
# devices, an empty lock file. Anything else that writes, creates, renames or truncates a file
# anywhere in wgedge/ fails the test below: route it through atomicfile.write/stage/remove.
WRITER_MODULE = "wgedge/router/atomicfile.py"
NOT_FILE_CONTENTS = {
    ("wgedge/router/runlock.py", "acquire", "os.open"): "the lock file: the flock belongs to "
    "the open file, so it is never replaced",
    ("wgedge/router/runlock.py", "claim", "os.ftruncate"): "the lock file's holder pid, a hint "
    "for a second starter (on tmpfs; an empty file reads as no pid)",
    ("wgedge/io/logger.py", "__init__", "open"): "a log: appended (FileSink)",
    ("wgedge/router/daemon.py", "detach", "os.open"): "/dev/null as stdin, stdout, stderr",
    ("wgedge/cli/commands.py", "_log_file_writable", "open"): "a log: opened for append",
    ("wgedge/router/watchdog.py", "run", "open"): "the hardware watchdog device",
    ("wgedge/io/tun.py", "__init__", "os.open"): "/dev/net/tun",
    ("wgedge/router/firstboot.py", "announce", "open"): "the console: a terminal",
    ("wgedge/router/upgrade.py", "write_slot", "os.open"): "a slot: a block device, written "
    "whole and read back before a marker names it",
}
WRITE_MODE = re.compile(r"[wax+]")
WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"}
RENAMES_AND_FRIENDS = {"replace", "rename", "renames", "truncate", "ftruncate", "link",
                       "symlink", "mkstemp", "NamedTemporaryFile", "copy", "copyfile", "copy2",
                       "move", "write_text", "write_bytes"}


def _call_name(func):
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else None
        return "%s.%s" % (base, func.attr) if base in ("os", "shutil", "tempfile") \
            else func.attr
    return None


def _mode_argument(call, position):
    args = call.args[position:position + 1] + [k.value for k in call.keywords
                                                 if k.arg == "mode"]
    return args[0] if args else None


def file_writes(tree):
    """(function, call name, line) for each call in `tree` that writes a file: open/fdopen in
    a write mode, os.open with a writing flag, a rename, a copy, a temporary file,
    Path.write_text, a logging.FileHandler."""
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = child.name
            if isinstance(child, ast.Call):
                call = _call_name(child.func)
                writes = False
                if call in ("open", "os.fdopen", "io.open"):
                    method = call == "open" and isinstance(child.func, ast.Attribute)
                    mode = _mode_argument(child, 0 if method else 1)  # Path.open(mode)
                    writes = mode is not None and not (isinstance(mode, ast.Constant)
                                                       and not WRITE_MODE.search(mode.value))
                elif call == "os.open":
                    flags = {n.attr for n in ast.walk(child.args[1])
                             if isinstance(n, ast.Attribute)} if len(child.args) > 1 else set()
                    writes = bool(flags & WRITE_FLAGS)
                elif call in ("FileHandler", "logging.FileHandler"):
                    writes, call = True, "FileHandler"
                elif call and call.split(".")[-1] in RENAMES_AND_FRIENDS \
                        and (call.startswith(("os.", "shutil.", "tempfile."))
                             or call in ("write_text", "write_bytes")):
                    writes = True
                if writes:
                    found.append((function, call, child.lineno))
            visit(child, name)

    visit(tree, None)
    return found


def test_every_file_write_goes_through_the_atomic_helper():
    problems, used = [], set()
    for path in modules().values():
        rel = path.relative_to(ROOT).as_posix()
        if rel == WRITER_MODULE:
            continue
        for function, call, line in file_writes(ast.parse(path.read_text())):
            if (rel, function, call) in NOT_FILE_CONTENTS:
                used.add((rel, function, call))
            else:
                problems.append("%s:%d %s() in %s" % (rel, line, call, function))
    assert problems == [], "write through wgedge/router/atomicfile.py: %s" % problems
    assert used == set(NOT_FILE_CONTENTS), "no longer there: %s" % (
        set(NOT_FILE_CONTENTS) - used)


@pytest.mark.parametrize("source, call", [
    ("def f(p):\n    with open(p, 'w') as f:\n        f.write('x')\n", "open"),
    ("def f(p, m):\n    open(p, mode=m)\n", "open"),
    ("import os\ndef f(p):\n    os.open(p, os.O_WRONLY | os.O_CREAT)\n", "os.open"),
    ("import os\ndef f(a, b):\n    os.replace(a, b)\n", "os.replace"),
    ("import os\ndef f(a, b):\n    os.rename(a, b)\n", "os.rename"),
    ("def f(p):\n    p.write_text('x')\n", "write_text"),
    ("def f(p):\n    p.open('ab')\n", "open"),
    ("import shutil\ndef f(a, b):\n    shutil.copy(a, b)\n", "shutil.copy"),
    ("import tempfile\ndef f():\n    tempfile.mkstemp()\n", "tempfile.mkstemp"),
    ("import logging\ndef f(p):\n    logging.FileHandler(p)\n", "FileHandler"),
])
def test_the_writer_check_finds(source, call):
    assert [(f, c) for f, c, _ in file_writes(ast.parse(source))] == [("f", call)]


def test_the_writer_check_passes_reads():
    source = ("import os\ndef f(p):\n    open(p)\n    open(p, 'rb')\n    p.open()\n"
              "    os.open(p, os.O_RDONLY | os.O_DIRECTORY)\n")
    assert file_writes(ast.parse(source)) == []
