"""The README's Python examples run as written (in order, in one namespace, inside a scratch folder)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    """The fenced ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_readme_library_examples_run_as_written(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # the examples write runs/ where they run
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert float(out[0]) < 1e-5  # the widened net computes what the net did
    assert (tmp_path / "runs" / "readme" / "report.html").is_file()
    assert (tmp_path / "runs" / "readme" / "logs" / "steps.csv").is_file()
    assert namespace["results"].growth[-1]["summary"].startswith("Task 4: ")
