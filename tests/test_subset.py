"""The MicroPython subset guard.

wgedge/core/, wgedge/crypto/pure/, wgedge/__init__.py and wgedge/crypto/__init__.py must run
unchanged under MicroPython 1.27 (tests/test_micropython.py runs them there). This file reads
their source with `ast` and fails on what a MicroPython run might not reach: an import outside
the allowed list, or a construct MicroPython lacks or runs differently. Every rule below was
checked against MicroPython 1.27 (WebAssembly build); its message says what to write instead.
The guard tests itself on small snippets at the bottom, so it cannot pass by checking nothing.
"""

import ast

import pytest

from tests.mpy_helper import ROOT, safe_module_paths

ALLOWED_MODULES = ("struct", "micropython")
ALLOWED_PACKAGES = ("wgedge.core", "wgedge.crypto.pure")
# wgedge/crypto/__init__.py picks a backend at run time. These imports may appear only inside a
# function body there, so importing the module under MicroPython never reaches them.
LAZY_IMPORTS = {"wgedge/crypto/__init__.py": ("os", "wgedge.crypto.fast")}

MISSING_MODULES = {
    "dataclasses": "MicroPython has no dataclasses: write a plain class with __init__",
    "enum": "MicroPython has no enum: use int constants (see wgedge/core/consts.py)",
    "typing": "MicroPython has no typing: put types in docstrings or comments",
    "ipaddress": "MicroPython has no ipaddress: use wgedge.core.ipaddr",
    "abc": "MicroPython has no abc: document the interface in a docstring",
    "functools": "MicroPython has no functools: write the loop or the closure",
    "__future__": "MicroPython has no __future__ module",
    "importlib": "MicroPython has no importlib: import modules by name",
}

# Methods MicroPython 1.27 lacks (or lacks in smaller builds), keyed by the attribute name.
MISSING_METHODS = {
    "bit_length": "int.bit_length is missing: compare against 1 << n",
    "bit_count": "int.bit_count is missing: count bits in a loop",
    "hex": "bytes.hex is missing from smaller builds: '%02x' % byte per byte",
    "fromhex": "bytes.fromhex is missing from smaller builds: int(text[i:i + 2], 16) per byte",
    "tobytes": "memoryview.tobytes is missing: use bytes(view)",
    "removeprefix": "str.removeprefix is missing: startswith() and a slice",
    "removesuffix": "str.removesuffix is missing: endswith() and a slice",
    "zfill": "str.zfill is missing: use '%05d' % n",
    "ljust": "str.ljust is missing: use '%-8s' % text",
    "rjust": "str.rjust is missing: use '%8s' % text",
    "casefold": "str.casefold is missing: use lower()",
}

# Builtin methods that take no keyword arguments in MicroPython ("function doesn't take
# keyword arguments"); to_bytes/from_bytes also have no signed= (pass byteorder positionally
# and keep the numbers unsigned).
POSITIONAL_ONLY_CALLS = ("to_bytes", "from_bytes", "split", "rsplit")


def is_allowed(module):
    if module in ALLOWED_MODULES:
        return True
    return any(module == p or module.startswith(p + ".") for p in ALLOWED_PACKAGES)


class SubsetChecker(ast.NodeVisitor):
    """Collects "line: message" problems for one module's source."""

    def __init__(self, lazy_allowed=()):
        self.lazy_allowed = lazy_allowed
        self.function_depth = 0
        self.problems = []

    def report(self, node, message):
        self.problems.append("line %d: %s" % (node.lineno, message))

    # --- imports ---------------------------------------------------------------------------
    def check_module(self, node, module):
        root = module.split(".")[0]
        if root in MISSING_MODULES:
            self.report(node, "import %s: %s" % (module, MISSING_MODULES[root]))
        elif is_allowed(module):
            return
        elif module in self.lazy_allowed:
            if self.function_depth == 0:
                self.report(node, "import %s only inside a function body" % module)
        else:
            self.report(node, "import %s is outside the MicroPython-safe list %s"
                        % (module, ALLOWED_MODULES + ALLOWED_PACKAGES))

    def visit_Import(self, node):
        for alias in node.names:
            self.check_module(node, alias.name)

    def visit_ImportFrom(self, node):
        if node.level:  # relative: stays inside the package being checked
            return
        module = node.module
        if is_allowed(module) or module in self.lazy_allowed or module.split(".")[0] in MISSING_MODULES:
            self.check_module(node, module)
            return
        # `from wgedge import core`, `from wgedge.crypto import pure`: check what is named.
        for alias in node.names:
            self.check_module(node, module + "." + alias.name)

    # --- scopes ----------------------------------------------------------------------------
    def visit_FunctionDef(self, node):
        if node.args.posonlyargs:
            self.report(node, "positional-only parameters (/) are a SyntaxError in MicroPython")
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    visit_Lambda = visit_FunctionDef

    def visit_ClassDef(self, node):
        if node.keywords:
            self.report(node, "class keywords (metaclass=...) are not supported by MicroPython")
        self.generic_visit(node)

    # --- calls and attributes --------------------------------------------------------------
    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Attribute):
            if func.attr in POSITIONAL_ONLY_CALLS and node.keywords:
                self.report(node, ".%s() takes no keyword arguments in MicroPython (%s=)"
                            % (func.attr, node.keywords[0].arg))
        elif isinstance(func, ast.Name):
            if func.id == "__import__":
                self.report(node, "__import__ hides an import from this guard: use import")
            elif func.id == "pow" and len(node.args) == 3 and is_negative(node.args[1]):
                self.report(node, "pow(x, -1, m) returns 0 in MicroPython: use pow(x, m - 2, m)")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in MISSING_METHODS:
            self.report(node, ".%s: %s" % (node.attr, MISSING_METHODS[node.attr]))
        elif node.attr == "error" and isinstance(node.value, ast.Name) and node.value.id == "struct":
            self.report(node, "struct.error does not exist in MicroPython (it raises ValueError): "
                        "check lengths before unpacking")
        self.generic_visit(node)

    # --- syntax MicroPython lacks ----------------------------------------------------------
    def visit_FormattedValue(self, node):
        if node.format_spec is not None:
            self.report(node, "f-string format spec (f'{x:02x}'): use '%02x' % x")
        self.generic_visit(node)

    def visit_Dict(self, node):
        if any(key is None for key in node.keys):
            self.report(node, "{**d} in a dict display is a SyntaxError in MicroPython: use update()")
        self.generic_visit(node)

    def check_display(self, node):
        # *x is fine as an assignment target (a, *b = ...) and in calls f(*args), not in a
        # list, tuple or set display.
        target = isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del))
        if not target and any(isinstance(elt, ast.Starred) for elt in node.elts):
            self.report(node, "[*a, *b] unpacking in a display is a SyntaxError in MicroPython")
        self.generic_visit(node)

    visit_List = visit_Tuple = visit_Set = check_display

    def forbid(message):
        def visit(self, node):
            self.report(node, message)
            self.generic_visit(node)

        return visit

    visit_YieldFrom = forbid("yield from: write the loop and yield each item")
    visit_AsyncFunctionDef = forbid("async def: the core is sans-I/O and never awaits")
    visit_Await = forbid("await: the core is sans-I/O and never awaits")
    visit_AsyncFor = forbid("async for: the core is sans-I/O")
    visit_AsyncWith = forbid("async with: the core is sans-I/O")
    visit_NamedExpr = forbid("the := walrus is missing from some MicroPython builds")
    visit_Match = forbid("match statements are a SyntaxError in MicroPython")
    visit_TryStar = forbid("except* is a SyntaxError in MicroPython")
    del forbid


def is_negative(node):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, int) and node.value < 0


def subset_problems(source, relpath="<snippet>"):
    """Problems found in one module's source, as "line N: message" strings."""
    try:
        tree = ast.parse(source, relpath)
    except SyntaxError as exc:
        return ["line %s: does not parse: %s" % (exc.lineno, exc.msg)]
    checker = SubsetChecker(LAZY_IMPORTS.get(relpath, ()))
    checker.visit(tree)
    return checker.problems


# --- the real modules --------------------------------------------------------------------------

SAFE_PATHS = safe_module_paths()


def test_guard_sees_the_package():
    relpaths = {p.relative_to(ROOT).as_posix() for p in SAFE_PATHS}
    assert {"wgedge/__init__.py", "wgedge/crypto/__init__.py", "wgedge/core/__init__.py",
            "wgedge/core/consts.py"} <= relpaths


@pytest.mark.parametrize("path", SAFE_PATHS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_stays_in_micropython_subset(path):
    relpath = path.relative_to(ROOT).as_posix()
    problems = subset_problems(path.read_text(), relpath)
    assert not problems, "%s is not MicroPython-safe:\n  " % relpath + "\n  ".join(problems)


# --- the guard itself ----------------------------------------------------------------------------

GOOD = '''
import struct
import micropython
from wgedge.core import consts as C
from wgedge.core.wire import parse
from wgedge.crypto.pure.chacha20 import chacha20_block
from wgedge.crypto import pure
from . import sibling
from .sibling import thing


class Peer:
    __slots__ = ("a",)

    def __init__(self, a, *, b=1):
        self.a = a


def f(data, p):
    n = int.from_bytes(data[:4], "little")
    out = n.to_bytes(4, "little")
    head, *rest = data
    total = 0

    def inner():
        nonlocal total
        total += 1

    inner()
    g(*rest, **{"k": 1})
    text = f"{n} {n!r}" + "%02x" % n + hex(n)
    inverse = pow(n, p - 2, p)
    for i in range(3):
        yield i
    return struct.pack("<I", n), out, text, inverse, bytes(memoryview(data)[1:]), sorted(data, key=len)
'''

BAD = [
    ("import os", "import os is outside"),
    ("import hashlib", "import hashlib is outside"),
    ("from wgedge.crypto import fast", "import wgedge.crypto.fast is outside"),
    ("from wgedge import io", "import wgedge.io is outside"),
    ("import wgedge.crypto.fast", "outside"),
    ("from dataclasses import dataclass", "no dataclasses"),
    ("import enum", "no enum"),
    ("from typing import Optional", "no typing"),
    ("import ipaddress", "no ipaddress"),
    ("from abc import ABC", "no abc"),
    ("import functools", "no functools"),
    ("from __future__ import annotations", "__future__"),
    ("def f():\n    import os", "import os is outside"),
    ("x = f'{n:02x}'", "format spec"),
    ("x = int.from_bytes(b, byteorder='little')", "byteorder="),
    ("x = int.from_bytes(b, 'big', signed=True)", "signed="),
    ("x = n.to_bytes(4, 'little', signed=False)", "signed="),
    ("x = n.bit_length()", "bit_length"),
    ("x = data.hex()", "bytes.hex"),
    ("x = bytes.fromhex('00')", "fromhex"),
    ("x = view.tobytes()", "tobytes"),
    ("x = s.rjust(4)", "rjust"),
    ("x = s.split(' ', maxsplit=1)", "keyword"),
    ("def g():\n    yield from range(3)", "yield from"),
    ("async def g():\n    pass", "async def"),
    ("async def g():\n    await h()", "await"),
    ("if (n := 3):\n    pass", "walrus"),
    ("match x:\n    case 1:\n        pass", "match"),
    ("x = pow(a, -1, p)", "pow(x, -1, m)"),
    ("try:\n    pass\nexcept struct.error:\n    pass", "struct.error"),
    ("x = {**a, 'k': 1}", "{**d}"),
    ("x = [*a, *b]", "unpacking in a display"),
    ("x = (*a, 1)", "unpacking in a display"),
    ("def f(a, /, b):\n    pass", "positional-only"),
    ("class C(metaclass=M):\n    pass", "metaclass"),
    ("m = __import__('os')", "__import__"),
    ("def f(:\n", "does not parse"),
]


def test_guard_accepts_the_allowed_subset():
    assert subset_problems(GOOD) == []


@pytest.mark.parametrize("source,expected", BAD, ids=[src for src, _ in BAD])
def test_guard_rejects(source, expected):
    problems = subset_problems(source)
    assert any(expected in p for p in problems), problems


def test_guard_reports_the_line():
    assert subset_problems("import struct\n\nimport os\n")[0].startswith("line 3: ")


CRYPTO_INIT = "wgedge/crypto/__init__.py"


def test_crypto_init_may_import_os_and_fast_inside_functions():
    lazy = "def load():\n    import os\n    from wgedge.crypto.fast import FastBackend\n"
    assert subset_problems(lazy, CRYPTO_INIT) == []
    method = "class L:\n    def load(self):\n        import os\n"
    assert subset_problems(method, CRYPTO_INIT) == []


@pytest.mark.parametrize("source", [
    "import os",
    "from wgedge.crypto.fast import FastBackend",
    "try:\n    import os\nexcept ImportError:\n    os = None",
    "class Loader:\n    import os",
])
def test_crypto_init_top_level_os_or_fast_rejected(source):
    assert any("only inside a function body" in p for p in subset_problems(source, CRYPTO_INIT))


def test_lazy_exception_is_only_for_crypto_init():
    problems = subset_problems("def f():\n    import os\n", "wgedge/core/device.py")
    assert any("import os is outside" in p for p in problems)
