"""The README's Python API example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_python_api_example_runs(tmp_path, monkeypatch, capsys):
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "synthesis 32" in printed and (tmp_path / "samples" / "hello.svg").is_file()
    assert (tmp_path / "models" / "api" / "last.pt").is_file() and (tmp_path / "cache" / "demo-inspect").is_dir()
    assert (tmp_path / "models" / "tuned" / "last.pt").is_file() and "Reading(source=" in printed
