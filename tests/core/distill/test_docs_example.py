"""The worked example of docs/distillation.md runs and reaches its stated accuracy."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "distillation.md"


def test_crossmodal_distillation_example_runs(capsys):
    text = DOC.read_text()
    block = re.search(r"<!-- example: crossmodal -->\n```python\n(.*?)```", text, re.S)
    assert block, "docs/distillation.md lost its example block"
    exec(compile(block.group(1), str(DOC), "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    accuracy = float(out.split("class hit rate: ")[1].split()[0])
    assert accuracy > 0.9
