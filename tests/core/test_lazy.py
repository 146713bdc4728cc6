"""manyview.lazy_exports: a package's re-exported names import their module on first read,
are kept once read, show in dir() and __all__; the packages built on it import nothing heavy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

PACKAGE = {
    "lazypkg/__init__.py": """
        from manyview.lazy import lazy_exports

        __version__ = "1.0"
        _EXPORTS = {"Heavy": "lazypkg.heavy", "helper": "lazypkg.heavy", "Other": "lazypkg.other"}
        __getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
    """,
    "lazypkg/heavy.py": """
        IMPORTS = []
        IMPORTS.append(__name__)

        class Heavy:
            pass

        def helper():
            return "helped"
    """,
    "lazypkg/other.py": """
        Other = "other"
    """,
}

CHECK = """
import sys
import lazypkg

assert "lazypkg.heavy" not in sys.modules and "lazypkg.other" not in sys.modules
assert lazypkg.__all__ == ["Heavy", "Other", "helper"]
assert {"Heavy", "Other", "helper", "__version__"} <= set(dir(lazypkg))
assert dir(lazypkg) == sorted(set(dir(lazypkg)))
assert "Heavy" not in vars(lazypkg)

assert lazypkg.helper() == "helped"
assert "lazypkg.heavy" in sys.modules and "lazypkg.other" not in sys.modules
assert "helper" in vars(lazypkg) and "Heavy" not in vars(lazypkg)  # kept once read
assert lazypkg.Heavy.__module__ == "lazypkg.heavy"
assert sys.modules["lazypkg.heavy"].IMPORTS == ["lazypkg.heavy"]  # imported once
from lazypkg import Other
assert Other == "other"

try:
    lazypkg.missing
except AttributeError as exc:
    assert str(exc) == "module 'lazypkg' has no attribute 'missing'", exc
else:
    raise AssertionError("no AttributeError")
assert not hasattr(lazypkg, "IMPORTS")  # only the exported names
print("OK")
"""


def test_names_load_on_first_read(tmp_path: Path, run_python):
    for rel, source in PACKAGE.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(source))
    result = run_python("-c", CHECK, path=[tmp_path])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"


def test_the_core_stays_lazy():
    import manyview
    import manyview.testing

    assert {"load_run", "Run", "register_all"} <= set(dir(manyview))
    assert {"lazy_exports", "register_all"} <= set(manyview.__all__)
    assert manyview.testing.__all__ == sorted(manyview.testing.__all__)
    assert "check_loss_output" in dir(manyview.testing)
    with pytest.raises(AttributeError, match="module 'manyview' has no attribute 'nope'"):
        manyview.nope


@pytest.mark.parametrize("module", ["manyview", "manyview.testing", "manyview.lazy"])
def test_importing_alone_imports_nothing_heavy(run_python, module):
    code = (
        "import sys\n"
        f"import {module}\n"
        "print('HEAVY', [m for m in ('torch', 'numpy', 'pytest') if m in sys.modules])\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
