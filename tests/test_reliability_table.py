"""RELIABILITY.md stays true to the tests: every row names an existing test, every reliability test has a row."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"`(tests/test_\w+\.py)::(\w+)`")


def _rows() -> list[str]:
    return [
        line
        for line in (ROOT / "RELIABILITY.md").read_text().splitlines()
        if line.startswith("| ")
    ]


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def test_every_row_names_tests_that_exist():
    referenced = [ref for row in _rows() for ref in REFERENCE.findall(row)]
    assert len(referenced) >= 30
    missing = [
        f"{file}::{name}"
        for file, name in referenced
        if name not in _test_functions(ROOT / file)
    ]
    assert not missing, f"RELIABILITY.md names tests that do not exist: {missing}"


def test_every_reliability_test_has_a_row():
    referenced = {ref for row in _rows() for ref in REFERENCE.findall(row)}
    files = sorted((ROOT / "tests").glob("test_reliability_*.py"))
    assert len(files) >= 5
    untabled = [
        f"tests/{path.name}::{name}"
        for path in files
        if path.name != Path(__file__).name
        for name in sorted(_test_functions(path))
        if (f"tests/{path.name}", name) not in referenced
    ]
    assert not untabled, (
        f"reliability tests without a row in RELIABILITY.md: {untabled}"
    )


def test_each_row_has_a_fault_a_result_and_a_test_column():
    for row in _rows():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[0] in ("fault", "---"):
            continue
        assert len(cells) == 3 and all(cells), row
        assert REFERENCE.search(cells[2]) or cells[2] == "—", row
        assert cells[2] != "—" or "not tried" in cells[1], row
