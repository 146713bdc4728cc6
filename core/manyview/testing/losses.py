"""Contract checks of losses: output, gradients, dtype, list input, bad input, bf16.

Each ``check_*`` function raises ``AssertionError`` with a message on failure, so it works
in any test runner; :class:`LossContractTests` wraps them as pytest test methods.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from manyview.testing.examples import build

__all__ = [
    "LOSS_CHECKS",
    "LossContractTests",
    "check_loss_bad_input",
    "check_loss_bf16",
    "check_loss_dtype",
    "check_loss_gradients",
    "check_loss_keywords",
    "check_loss_list_input",
    "check_loss_output",
    "check_loss_small_temperature",
    "is_distillation",
]


def _loss_inputs(
    loss: Any,
    n: int = 8,
    m: int | None = None,
    d: int = 16,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[Tensor, dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    if hasattr(loss, "example_inputs"):
        return loss.example_inputs(n, m, d, generator=g, dtype=dtype)
    return torch.randn(n, m or 2, d, generator=g, dtype=dtype), {}


def _call(loss: Any, views: Any, kwargs: dict[str, Any], seed: int = 0) -> Tensor:
    """Call on a copy (stateful losses stay untouched) under a fixed global seed."""
    torch.manual_seed(seed)
    return copy.deepcopy(loss)(views, **kwargs)


def check_loss_output(loss: Any) -> None:
    """A 0-dim, finite tensor from the loss's example inputs."""
    views, kwargs = _loss_inputs(loss)
    out = _call(loss, views, kwargs)
    assert isinstance(out, Tensor), f"a loss must return a tensor, got {type(out).__name__}"
    assert out.dim() == 0, f"a loss must return a 0-dim tensor, got shape {tuple(out.shape)}"
    assert torch.isfinite(out), f"loss is not finite on its example inputs: {out}"


def check_loss_gradients(loss: Any) -> None:
    """Gradients reach the views and are finite."""
    views, kwargs = _loss_inputs(loss)
    views.requires_grad_(True)
    _call(loss, views, kwargs).backward()
    assert views.grad is not None, "no gradient reached the views"
    assert torch.isfinite(views.grad).all(), "non-finite gradient"
    assert views.grad.abs().sum() > 0, "the gradient is identically zero"


def check_loss_dtype(loss: Any) -> None:
    """float64 in gives float64 out; float32 in gives float32 out; the device is kept."""
    for dtype in (torch.float32, torch.float64):
        views, kwargs = _loss_inputs(loss, dtype=dtype)
        out = _call(copy.deepcopy(loss).to(dtype), views, kwargs)
        assert out.dtype == dtype, f"{dtype} inputs gave a {out.dtype} loss"
        assert out.device == views.device, f"inputs on {views.device} gave a loss on {out.device}"


def is_distillation(loss: Any) -> bool:
    """Student-vs-teacher losses (``takes == "student"``) take a student tensor and
    ``targets`` rather than M views."""
    from manyview.recipes.weighted import loss_contract

    return loss_contract(loss)[0] == "student"


def check_loss_list_input(loss: Any) -> None:
    """A list of M (N, D) tensors gives the same value as the (N, M, D) tensor.

    For a distillation loss: the student's and teacher's batches are checked instead — a
    teacher batch of another size is refused."""
    if is_distillation(loss):
        student, kwargs = _loss_inputs(loss)
        targets = kwargs.get("targets")  # None for losses that are their own teacher (sla)
        if isinstance(targets, Tensor) and targets.shape[0] > 1:
            short = {**kwargs, "targets": targets[:-1]}
            _raises_value_error(lambda: _call(loss, student, short), "a shorter teacher batch")
        return
    views, kwargs = _loss_inputs(loss, dtype=torch.float64)
    a = _call(loss, views, kwargs)
    b = _call(loss, list(views.unbind(1)), kwargs)
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12), f"tensor form {a} != list form {b}"


def _raises_value_error(fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except ValueError as exc:
        assert str(exc), f"{what}: the ValueError has no message"
        return
    except Exception as exc:  # pragma: no cover - reported as a failure
        raise AssertionError(
            f"{what}: raised {type(exc).__name__} instead of ValueError: {exc}"
        ) from exc
    raise AssertionError(f"{what}: no error was raised")


def check_loss_bad_input(loss: Any) -> None:
    """Wrong rank, mismatched list shapes and NaN each raise a ValueError with a message.

    For a distillation loss: NaN in the student or the targets, targets that require grad,
    and missing targets."""
    if is_distillation(loss):
        student, kwargs = _loss_inputs(loss)
        bad = student.clone()
        bad.view(-1)[0] = float("nan")
        _raises_value_error(lambda: _call(loss, bad, kwargs), "NaN in the student output")
        targets = kwargs.get("targets")
        if isinstance(targets, Tensor):
            bad_t = targets.clone()
            bad_t.view(-1)[0] = float("inf")
            _raises_value_error(
                lambda: _call(loss, student, {**kwargs, "targets": bad_t}), "inf in the targets"
            )
            grad_t = targets.clone().requires_grad_(True)
            _raises_value_error(
                lambda: _call(loss, student, {**kwargs, "targets": grad_t}),
                "targets that require grad",
            )
        if "targets" in getattr(loss, "needs", ()):
            rest = {k: v for k, v in kwargs.items() if k != "targets"}
            _raises_value_error(lambda: _call(loss, student, rest), "missing targets")
        return
    views, kwargs = _loss_inputs(loss)
    _raises_value_error(lambda: _call(loss, views[:, 0], kwargs), "a 2-D tensor")
    _raises_value_error(lambda: _call(loss, views[None], kwargs), "a 4-D tensor")
    parts = list(views.unbind(1))
    parts[-1] = parts[-1][:, :-1]
    _raises_value_error(lambda: _call(loss, parts, kwargs), "a list with mismatched shapes")
    bad = views.clone()
    bad[0, 0, 0] = float("nan")
    _raises_value_error(lambda: _call(loss, bad, kwargs), "NaN in the views")


def _raises_one_line(fn: Callable[[], Any], what: str, *needles: str) -> str:
    """The one-line message of the TypeError or ValueError ``fn`` raises, holding ``needles``."""
    try:
        fn()
    except (TypeError, ValueError) as exc:
        text = str(exc)
        assert text and "\n" not in text, f"{what}: the error is not one line: {text!r}"
        for needle in needles:
            assert needle in text, f"{what}: the error does not say {needle!r}: {text}"
        return text
    raise AssertionError(f"{what}: no error was raised")


def check_loss_keywords(loss: Any) -> None:
    """A keyword the loss does not take is refused with a one-line error and a close match
    (``labelz=`` -> ``labels``); a loss that does not use labels refuses ``labels=`` (rather
    than ignoring them); every keyword its example inputs use is accepted."""
    from manyview.losses.keywords import call_keywords

    views, kwargs = _loss_inputs(loss)
    accepted = call_keywords(loss)
    missing = sorted(set(kwargs) - accepted)
    assert not missing, f"the loss's example inputs use keywords it does not take: {missing}"
    n = views.shape[0]
    typo = {**kwargs, "labelz": torch.arange(n)}
    _raises_one_line(lambda: _call(loss, views, typo), "an unknown keyword", "did you mean")
    if "labels" not in accepted:
        given = {**kwargs, "labels": torch.arange(n)}
        _raises_one_line(lambda: _call(loss, views, given), "unused labels=", "labels=")


def check_loss_bf16(loss: Any) -> None:
    """bf16 inputs under CPU bf16 autocast give a finite loss."""
    views, kwargs = _loss_inputs(loss, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = _call(loss, views, kwargs)
    assert torch.isfinite(out), f"non-finite loss under bf16 autocast: {out}"


def check_loss_small_temperature(loss: Any, m: int = 8) -> None:
    """No overflow with M views at the loss's own settings (make it with a small temperature)."""
    max_views = getattr(loss, "max_views", None)
    m = min(m, max_views or m)
    views, kwargs = _loss_inputs(loss, n=16, m=m, d=8)
    views = views * 10  # large logits / features too
    views = views.requires_grad_(True)
    out = _call(loss, views, kwargs)
    out.backward()
    assert torch.isfinite(out), f"non-finite loss at M={m}: {out}"
    assert torch.isfinite(views.grad).all(), f"non-finite gradient at M={m}"


LOSS_CHECKS: dict[str, Callable[[Any], None]] = {
    "output": check_loss_output,
    "gradients": check_loss_gradients,
    "dtype": check_loss_dtype,
    "list_input": check_loss_list_input,
    "bad_input": check_loss_bad_input,
    "keywords": check_loss_keywords,
    "bf16": check_loss_bf16,
}


class LossContractTests:
    """pytest mixin: set ``name`` (a registered loss) and optionally ``kwargs``."""

    name: str = ""
    kwargs: dict[str, Any] = {}  # noqa: RUF012 - a read-only class-level default

    def make(self) -> Any:
        return build("loss", self.name, **self.kwargs)

    def test_output(self) -> None:
        check_loss_output(self.make())

    def test_gradients(self) -> None:
        check_loss_gradients(self.make())

    def test_dtype(self) -> None:
        check_loss_dtype(self.make())

    def test_list_input(self) -> None:
        check_loss_list_input(self.make())

    def test_bad_input(self) -> None:
        check_loss_bad_input(self.make())

    def test_bf16(self) -> None:
        check_loss_bf16(self.make())

    def test_keywords(self) -> None:
        check_loss_keywords(self.make())
