"""Contract checks for anything registered with manyview, for the project and plugin authors.

Each ``check_*`` function raises ``AssertionError`` with a message on failure, so it works in
any test runner. The ``*ContractTests`` classes wrap them as pytest test methods::

    from manyview.testing import LossContractTests

    class TestMyLoss(LossContractTests):
        name = "my_loss"          # as registered through manyview_register_losses
        kwargs = {"temperature": 0.2}

manyview's own suite runs the same checks over everything in the registry, so a newly
registered loss, view or encoder is checked with no new test.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

import manyview
from manyview.registry import Entry
from manyview.testing_attention import (
    check_attention_option,
    fake_xformers,
    reference_xformers_ops,
)
from manyview.testing_benchmarks import BenchmarkContractTests, check_benchmark, tiny_run
from manyview.testing_datasets import (
    DatasetContractTests,
    check_dataset,
    check_dataset_determinism,
)
from manyview.testing_distributed import check_distributed_equivalence
from manyview.testing_recipes import (
    RECIPE_CHECKS,
    RecipeContractTests,
    check_recipe_encode,
    check_recipe_gradcache,
    check_recipe_resume,
    check_recipe_state,
    check_recipe_steps,
    example_config,
)

__all__ = [
    "LOSS_CHECKS",
    "RECIPE_CHECKS",
    "BenchmarkContractTests",
    "DatasetContractTests",
    "EncoderContractTests",
    "LossContractTests",
    "RecipeContractTests",
    "TeacherContractTests",
    "ViewContractTests",
    "build",
    "check_attention_option",
    "check_benchmark",
    "check_dataset",
    "check_dataset_determinism",
    "check_distributed_equivalence",
    "check_encoder",
    "check_loss_bad_input",
    "check_loss_bf16",
    "check_loss_dtype",
    "check_loss_gradients",
    "check_loss_list_input",
    "check_loss_output",
    "check_loss_small_temperature",
    "check_recipe_encode",
    "check_recipe_gradcache",
    "check_recipe_resume",
    "check_recipe_state",
    "check_recipe_steps",
    "check_teacher",
    "check_view",
    "example_config",
    "fake_xformers",
    "reference_xformers_ops",
    "tiny_run",
]


#: The context :func:`build` gives factories' ``from_context`` arguments (a small dataset,
#: 16-dimensional embeddings), as a recipe would.
TEST_CONTEXT = {"dataset_size": 64, "embed_dim": 16, "input_dim": 8, "steps": 10}


def build(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Create ``name`` as a recipe would in a test: the registration's ``example_kwargs``
    (if any) and :data:`TEST_CONTEXT` for the factory's ``from_context`` arguments,
    overridden by ``kwargs``.

    ``example_kwargs`` is a dict, a callable returning one, or a ``"module:function"`` string
    naming such a callable (for arguments such as a student module)."""
    from manyview.context import context_arguments

    entry = manyview.entry(kind, name)
    example = entry.meta.get("example_kwargs", {})
    if isinstance(example, str):  # "module:function" returning the kwargs (e.g. a module)
        example = Entry(kind, name, example, entry.plugin).load()
    if callable(example):
        example = example()
    options = {**example, **kwargs}
    filled = context_arguments(entry.load(), options, TEST_CONTEXT)
    return manyview.create(kind, name, **{**filled, **options})


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
    "bf16": check_loss_bf16,
}


def check_view(view: Any, n: int = 4) -> None:
    """A view keeps the batch size (times ``view.copies_per_input`` for a view that expands
    each input into several rows, such as ``rotation``), is deterministic under a seeded
    generator, and makes its own example inputs (``view.example_inputs(n, generator=...)``)."""
    assert hasattr(view, "example_inputs"), "a view must provide example_inputs(n, generator=...)"
    x = view.example_inputs(n, generator=torch.Generator().manual_seed(0))
    a = view(x, generator=torch.Generator().manual_seed(1))
    b = view(x, generator=torch.Generator().manual_seed(1))
    first = _batch_part(a)
    rows = n * getattr(view, "copies_per_input", 1)
    assert len(first) == rows, f"the view changed the batch size from {rows} to {len(first)}"
    if isinstance(a, Tensor):
        assert torch.equal(a, b), "the view is not deterministic under a seeded generator"
        assert torch.isfinite(a).all() if a.is_floating_point() else True, "non-finite output"
    elif _is_text_batch(a):
        assert a == b, "the view is not deterministic under a seeded generator"


def _is_text_batch(out: Any) -> bool:
    """A batch of text: a list or tuple of strings (what default_collate makes of them)."""
    return isinstance(out, list | tuple) and all(isinstance(s, str) for s in out)


def _batch_part(out: Any) -> Any:
    """What the batch size is read from: the tensor, a dict's first value, a text batch
    itself, or the first item of a tuple/list of batch parts."""
    if isinstance(out, Tensor) or _is_text_batch(out):
        return out
    if isinstance(out, dict):
        return next(iter(out.values()))
    return out[0]


def check_encoder(encoder: Any, n: int = 2) -> None:
    """An encoder reports ``output_dim``, makes ``example_inputs(n)`` and maps them to
    finite features (n, output_dim) that carry gradients to its parameters."""
    dim = getattr(encoder, "output_dim", None)
    assert isinstance(dim, int) and dim > 0, f"output_dim must be a positive int, got {dim!r}"
    assert hasattr(encoder, "example_inputs"), "an encoder must provide example_inputs(n)"
    x = encoder.example_inputs(n)
    out = encoder(x)
    assert isinstance(out, Tensor), f"an encoder must return a tensor, got {type(out).__name__}"
    assert tuple(out.shape) == (n, dim), f"expected features ({n}, {dim}), got {tuple(out.shape)}"
    assert torch.isfinite(out).all(), "non-finite features"
    params = [p for p in encoder.parameters() if p.requires_grad]
    if params:
        out.float().sum().backward()
        assert any(p.grad is not None for p in params), "no gradient reached the parameters"


def check_teacher(teacher: Any, n: int = 4) -> None:
    """A teacher makes targets without gradients, never has trainable parameters, survives a
    ``state_dict`` round trip into a copy, reads its ``keys`` from a batch mapping (a teacher
    of one key gives the same targets for ``{key: x, ...}`` as for ``x``), and ``update``
    runs."""
    batch = teacher.example_inputs(n, generator=torch.Generator().manual_seed(0))
    params = [name for name, p in teacher.named_parameters() if p.requires_grad]
    assert not params, f"a teacher must not have trainable parameters: {params[:3]}"
    out = teacher(batch)
    tensors = (
        [out] if isinstance(out, Tensor) else [t for t in _flatten(out) if isinstance(t, Tensor)]
    )
    assert tensors, f"the teacher returned no tensor: {type(out).__name__}"
    for t in tensors:
        assert not t.requires_grad, "teacher targets must not require grad"
        if t.is_floating_point():
            assert torch.isfinite(t).all(), "non-finite teacher targets"
    twin = copy.deepcopy(teacher)
    twin.load_state_dict(teacher.state_dict())
    again = twin(batch)
    for a, b in zip(
        tensors, [again] if isinstance(again, Tensor) else _flatten(again), strict=False
    ):
        if isinstance(b, Tensor):
            assert torch.equal(a, b), "a state_dict round trip changed the targets"
    keys = tuple(getattr(teacher, "keys", ()))
    if len(keys) == 1 and not isinstance(batch, dict):  # the typed input: a batch mapping
        mapped = teacher({keys[0]: batch, "label": torch.zeros(n, dtype=torch.long)})
        for a, b in zip(
            tensors, [mapped] if isinstance(mapped, Tensor) else _flatten(mapped), strict=False
        ):
            if isinstance(b, Tensor):
                assert torch.equal(a, b), (
                    f"reading {keys[0]!r} of a batch mapping gave other targets"
                )
    teacher.update(getattr(teacher, "student", None), 1)


def _flatten(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _flatten(v)]
    if isinstance(obj, list | tuple):
        return [x for v in obj for x in _flatten(v)]
    return [obj]


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


class ViewContractTests:
    """pytest mixin: set ``name`` (a registered view) and optionally ``kwargs``."""

    name: str = ""
    kwargs: dict[str, Any] = {}  # noqa: RUF012

    def test_view_contract(self) -> None:
        check_view(build("view", self.name, **self.kwargs))


class TeacherContractTests:
    """pytest mixin: set ``name`` (a registered teacher) and ``kwargs``."""

    name: str = ""
    kwargs: dict[str, Any] = {}  # noqa: RUF012

    def test_teacher_contract(self) -> None:
        check_teacher(build("teacher", self.name, **self.kwargs))


class EncoderContractTests:
    """pytest mixin: set ``name`` (a registered encoder) and optionally ``kwargs``."""

    name: str = ""
    kwargs: dict[str, Any] = {}  # noqa: RUF012

    def test_encoder_contract(self) -> None:
        check_encoder(build("encoder", self.name, **self.kwargs))
