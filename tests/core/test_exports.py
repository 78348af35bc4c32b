"""The public surface of wamp_core, and its promise to stay sans-IO."""

from __future__ import annotations

import ast
import inspect
import pathlib
import subprocess
import sys

import wamp_core

CORE = pathlib.Path(wamp_core.__file__).parent
FORBIDDEN = {"trio", "asyncio", "socket", "ssl", "threading", "selectors", "time", "anyio"}


def test_all_names_exist_and_are_unique() -> None:
    assert len(set(wamp_core.__all__)) == len(wamp_core.__all__)
    for name in wamp_core.__all__:
        assert hasattr(wamp_core, name), name


def test_every_public_class_and_function_is_exported() -> None:
    for path in sorted(CORE.glob("_*.py")):
        module = __import__(f"wamp_core.{path.stem}", fromlist=["__all__"])
        for name in getattr(module, "__all__", ()):
            if path.stem in ("_client", "_router") and name == "TRANSITIONS":
                continue  # introspection for tests and docs, reached via the module
            if path.stem in ("_dealer", "_broker"):
                continue  # internal building blocks of the router
            assert name in wamp_core.__all__, f"{path.stem}.{name} is not exported"


def test_public_names_have_docstrings() -> None:
    for name in wamp_core.__all__:
        value = getattr(wamp_core, name)
        if isinstance(value, type) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_no_io_imports_in_source() -> None:
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = {node.module.split(".")[0]}
            else:
                continue
            assert not names & FORBIDDEN, f"{path.name} imports {names & FORBIDDEN}"


def test_import_pulls_in_no_io_module() -> None:
    code = "import sys, wamp_core; print(sorted({'trio', 'asyncio', 'socket'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
