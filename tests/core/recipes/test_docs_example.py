"""The objective-plugin example of docs/plugins.md runs: a recipe written from scratch,
registered, trained, resumed and benchmarked."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


def test_objective_plugin_example_runs(capsys, fresh_plugins):
    text = DOC.read_text()
    block = re.search(r"<!-- example: objective -->\n```python\n(.*?)```", text, re.S)
    assert block, "docs/plugins.md lost its objective example block"
    exec(compile(block.group(1), str(DOC), "exec"), {"__name__": "docs_example"})
    assert "linear probe" in capsys.readouterr().out
