"""docs/reliability.md names real tests, and its bad-input table is complete."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"

# ``tests/trio/test_x.py::test_name`` or ``tests/x.py::Class::test_name``.
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+(?:::\w+)?)")


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def references(text: str) -> list[tuple[str, str]]:
    return sorted(set(REFERENCE.findall(text)))


@functools.cache
def defined_names(path: str) -> frozenset[str]:
    """The functions a file defines: ``name`` for each (module level or in a
    class), and ``Class::name`` for methods (nested classes too)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=path)
    names: set[str] = set()

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(prefix + node.name)
                names.add(node.name)  # a method may be named without its class
            elif isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}::")

    visit(tree.body, "")
    return frozenset(names)


def section(text: str, title: str) -> str:
    """The text of the ``## title`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match is not None, f"no section '## {title}' in {DOC.name}"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, split into cells."""
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table: list[str] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    assert len(table) >= 2, "a table needs a header and a separator"
    assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", table[1]), table[1]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in table[2:]]


def test_the_document_names_tests() -> None:
    assert len(references(doc_text())) >= 30


@pytest.mark.parametrize(("path", "name"), references(doc_text()), ids=str)
def test_every_named_test_exists(path: str, name: str) -> None:
    assert (ROOT / path).is_file(), f"{DOC.name} names {path}, which does not exist"
    assert name in defined_names(path), f"{DOC.name} names {path}::{name}, which is not defined"


def test_the_bad_input_table_has_a_test_in_every_row() -> None:
    rows = table_rows(section(doc_text(), "Bad input"))
    assert len(rows) >= 30
    for row in rows:
        assert len(row) == 5, f"not 5 cells: {row}"
        assert all(row), f"an empty cell: {row}"
        assert REFERENCE.search(row[4]), f"no test named in the last cell: {row}"


def test_the_bad_input_table_has_the_documented_columns() -> None:
    text = section(doc_text(), "Bad input")
    header = next(line for line in text.splitlines() if line.startswith("|"))
    cells = [cell.strip() for cell in header.strip().strip("|").split("|")]
    assert cells == [
        "input",
        "transport",
        "what the peer gets",
        "what is logged (level: text)",
        "test",
    ]


def test_the_later_sections_exist() -> None:
    text = doc_text()
    for title in (
        "Bad input",
        "Limits",
        "Keepalive and timeouts",
        "Faults",
        "Soak",
        "Fuzzing",
        "Security under load",
    ):
        section(text, title)


def test_the_checks_can_fail() -> None:
    """A name that is not defined is not found; references are parsed whole."""
    here = "tests/test_reliability_doc.py"
    assert "test_the_document_names_tests" in defined_names(here)
    assert "test_no_such_thing" not in defined_names(here)
    assert "doc_text" in defined_names(here)
    with pytest.raises(AssertionError, match="no section"):
        section("## Other\n", "Bad input")
    assert table_rows("text\n| a | b |\n|---|---|\n| 1 | |\n\nafter\n") == [["1", ""]]
    assert references("`tests/a.py::test_b` and tests/c/d.py::K::test_e") == [
        ("tests/a.py", "test_b"),
        ("tests/c/d.py", "K::test_e"),
    ]
