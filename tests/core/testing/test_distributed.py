"""manyview.testing.distributed without processes: the equivalence check's reporting, with
the ranks' results simulated from one process's, and its refusals; and the test helpers'
modules import on their own (no import cycles), ``python -m manyview.testing.distributed``
among them."""

from __future__ import annotations

import pytest

import manyview.testing
import manyview.testing.distributed as td
from manyview.testing import check_distributed_equivalence


class _FakePool:
    """Stands in for the spawned ranks: returns results derived from one process's."""

    def __init__(self, doctor):
        self.doctor = doctor

    def run(self, specs):
        out = []
        for rank in range(2):
            per_spec = []
            for spec in specs:
                ref = td.reference(spec)
                per_spec.append({mode: self.doctor(ref, rank, mode) for mode in spec["modes"]})
            out.append(per_spec)
        return out


def _scaled(ref, factor):
    return {
        "loss": ref["loss"],
        "grads": {k: g * factor for k, g in ref["grads"].items()},
        "buffers": ref["buffers"],
    }


def test_the_check_passes_on_agreeing_ranks_and_names_each_mismatch(monkeypatch):
    monkeypatch.setattr(td, "pool", lambda *a, **k: _FakePool(lambda ref, r, mode: ref))
    check_distributed_equivalence("infonce", modes=("full",))
    # gradients W times too small, as with a gather without gradients (open_clip mode 1)
    monkeypatch.setattr(
        td, "pool", lambda *a, **k: _FakePool(lambda ref, r, mode: _scaled(ref, 0.5))
    )
    with pytest.raises(AssertionError) as info:
        check_distributed_equivalence("clip", kwargs={"learnable": True}, modes=("full",))
    text = str(info.value)
    for part in (
        "clip (gather mode 'full', 2 ranks)",
        "rank 1",
        "encoder.weight",
        "loss.logit_scale",
    ):
        assert part in text

    # a rank's loss differs from the global loss where every rank computes it
    def off(ref, rank, mode):
        return {**ref, "loss": ref["loss"] + (0.1 if rank else -0.1)}

    monkeypatch.setattr(td, "pool", lambda *a, **k: _FakePool(off))
    check_distributed_equivalence("infonce", modes=("local_anchors",))  # shares may differ
    with pytest.raises(AssertionError, match="rank 0's loss"):
        check_distributed_equivalence("infonce", modes=("full",))
    with pytest.raises(AssertionError, match="every rank computes the global loss"):
        check_distributed_equivalence("isogclr", modes=("local_anchors",))  # falls back


def test_the_check_refuses_bad_arguments():
    with pytest.raises(ValueError, match="multiple of world_size"):
        check_distributed_equivalence("infonce", n=7)
    with pytest.raises(ValueError, match="modes"):
        check_distributed_equivalence("infonce", modes=("none",))


MODULES = ["examples", "losses", "views", "encoders", "teachers", "distributed", "attention"]


def test_each_module_imports_first_and_alone(run_python):
    """Each module imported first, in a process where no other manyview.testing module is
    loaded: an import cycle would fail here."""
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('manyview.testing')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module('manyview.testing.' + name)\n"
    )
    result = run_python("-W", "error", "-c", code)
    assert result.returncode == 0, result.stderr


def test_every_public_name_is_re_exported_from_its_module():
    for name in manyview.testing.__all__:
        value = getattr(manyview.testing, name)
        where = getattr(value, "__module__", "manyview.testing.losses")  # LOSS_CHECKS: a dict
        assert where.startswith("manyview.testing."), (name, where)
    assert {"build", "LossContractTests", "check_distributed_equivalence", "fake_xformers"} <= set(
        dir(manyview.testing)
    )
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        manyview.testing.nope


def test_the_rank_entry_point_runs_as_a_module(run_python):
    """The spawned ranks run ``python -m manyview.testing.distributed``: it starts cleanly
    (no warning about the module being imported twice) and needs the rank's environment."""
    result = run_python("-W", "error", "-m", "manyview.testing.distributed")
    assert result.returncode != 0 and "KeyError: 'RANK'" in result.stderr, result.stderr
    assert "RuntimeWarning" not in result.stderr
