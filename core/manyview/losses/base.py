"""The loss contract: input checks, view stacking and normalisation shared by every loss.

Every manyview loss takes ``views`` — a tensor ``(N, M, D)`` (batch first: N instances,
M views or modalities, D the shared embedding size) or a sequence of M tensors ``(N, D)`` —
plus keyword-only ``labels`` ``(N,)``, ``index`` ``(N,)`` or teacher ``targets`` where the
method needs them, and returns a 0-dim tensor.

Losses compute in float32 or wider, with autocast disabled inside: half-precision inputs
(bf16 autocast) are up-cast before the similarities, and every -log(a/b) is a difference of
log-sum-exps, so no loss overflows at small temperatures or many views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview import distributed
from manyview.losses.engine import EngineConfig, EngineOption
from manyview.losses.keywords import check_call_keywords
from manyview.options import check_positive

Views = Tensor | Sequence[Tensor]


def as_view_tensor(
    views: Views,
    *,
    min_views: int = 2,
    max_views: int | None = None,
    min_batch: int = 2,
    who: str = "loss",
) -> Tensor:
    """Check ``views`` and return it as one ``(N, M, D)`` tensor (a list is stacked on dim 1).

    Raises:
        ValueError: naming the problem — wrong rank, mismatched shapes in a list, too few or
            too many views, a batch smaller than ``min_batch``, a non-float dtype, NaN or inf.
    """
    if isinstance(views, Tensor):
        if views.dim() != 3:
            hint = (
                " For one (N, D) tensor per view, pass a list: loss([z1, z2])."
                if views.dim() == 2
                else ""
            )
            raise ValueError(
                f"{who}: views must be a tensor (N, M, D) or a list of M tensors (N, D); "
                f"got a tensor of shape {tuple(views.shape)}.{hint}"
            )
        x = views
    elif isinstance(views, Sequence) and not isinstance(views, str | bytes):
        if len(views) == 0:
            raise ValueError(f"{who}: got an empty list of views")
        for k, v in enumerate(views):
            if not isinstance(v, Tensor):
                raise ValueError(f"{who}: view {k} is a {type(v).__name__}, not a tensor")
            if v.dim() != 2:
                raise ValueError(
                    f"{who}: each view in a list must be (N, D); view {k} has shape "
                    f"{tuple(v.shape)}"
                )
        shapes = {tuple(v.shape) for v in views}
        if len(shapes) > 1:
            listed = ", ".join(str(tuple(v.shape)) for v in views)
            raise ValueError(f"{who}: the views' shapes differ ({listed}); all must be (N, D)")
        dtypes = {v.dtype for v in views}
        if len(dtypes) > 1:
            raise ValueError(f"{who}: the views' dtypes differ ({sorted(map(str, dtypes))})")
        x = torch.stack(list(views), dim=1)
    else:
        raise ValueError(
            f"{who}: views must be a tensor (N, M, D) or a list of M tensors (N, D), "
            f"not {type(views).__name__}"
        )
    n, m, _ = x.shape
    if not x.is_floating_point():
        raise ValueError(f"{who}: views must be floating point, got {x.dtype}")
    if m < min_views:
        raise ValueError(f"{who} needs at least {min_views} views per instance, got M = {m}")
    if max_views is not None and m > max_views:
        what = "exactly" if max_views == min_views else "at most"
        raise ValueError(
            f"{who} takes {what} {max_views} views per instance, got M = {m}"
            + (
                "; for more, use 'pwe' (pairwise) or 'mv_infonce'/'mv_dhel'"
                if max_views == 2
                else ""
            )
        )
    if n < min_batch:
        raise ValueError(f"{who} needs a batch of at least {min_batch} instances, got N = {n}")
    if x.shape[2] == 0:
        raise ValueError(
            f"{who}: the embeddings have D = 0 features (shape {tuple(x.shape)}), so every "
            "similarity is 0 and the loss a constant; check the encoder's output_dim"
        )
    check_device(x, who)
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero().flatten()[:5].tolist()
        raise NonFiniteInputError(
            f"{who}: views contain NaN or inf (instances {bad}...); check the encoder's output"
        )
    return x


class NonFiniteInputError(ValueError):
    """A loss's input (views, a student output, teacher targets) holds NaN or inf: the
    encoder or the teacher diverged, not the loss's settings."""


def check_device(x: Tensor, who: str, what: str = "views") -> None:
    """Refuse a tensor on the ``meta`` device (shapes without data: nothing to compute).

    Raises:
        ValueError: ``"{who}: {what}: on the 'meta' device (shapes without values); ..."``.
    """
    if x.device.type == "meta":
        raise ValueError(
            f"{who}: {what}: on the 'meta' device (shapes without values), so there is "
            "nothing to compute; materialise the model first (module.to_empty(device=...) and "
            "load its weights) or pass real tensors"
        )


def check_generator(generator: Any, who: str) -> torch.Generator | None:
    """``generator`` if it is ``None`` or a ``torch.Generator`` (a seed is not one).

    Raises:
        ValueError: ``"{who}: generator must be a torch.Generator or None, got int 42; pass
            torch.Generator().manual_seed(42)"``.
    """
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    fix = (
        f"; pass torch.Generator().manual_seed({generator})"
        if isinstance(generator, int) and not isinstance(generator, bool)
        else "; pass torch.Generator().manual_seed(seed), on the inputs' device"
    )
    raise ValueError(
        f"{who}: generator must be a torch.Generator or None, got "
        f"{type(generator).__name__} {generator!r}{fix}"
    )


def check_similarities_finite(loss: Tensor, x: Tensor, who: str, temperature: Any) -> None:
    """After a loss on un-normalised embeddings (``normalize=False``): a non-finite value
    from finite inputs means the similarities overflowed; say how to fix it.

    Raises:
        ValueError: naming ``normalize=True`` and a larger temperature.
    """
    if bool(torch.isfinite(loss).all()):
        return
    biggest = float(x.detach().abs().amax()) if x.numel() else 0.0
    tau = f" / temperature {temperature}" if isinstance(temperature, int | float) else ""
    raise ValueError(
        f"{who}: the loss is not finite with normalize=False: the similarities of these "
        f"embeddings (largest |entry| {biggest:.3g}){tau} overflow; use normalize=True, a "
        "larger temperature, or smaller embeddings"
    )


def check_labels(
    labels: Any,
    n: int,
    *,
    kind: str = "class",
    who: str = "loss",
    device: torch.device | None = None,
) -> Tensor:
    """Return ``labels`` as a 1-D tensor of length ``n``; ``kind`` is "class" or "scalar"."""
    if not isinstance(labels, Tensor):
        try:
            labels = torch.as_tensor(labels)
        except Exception as exc:
            raise ValueError(
                f"{who}: labels must be a tensor (N,), got {type(labels).__name__}"
            ) from exc
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(
            f"{who}: labels must have shape ({n},) to match the batch, got {tuple(labels.shape)}"
        )
    if kind == "class":
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(
                f"{who}: class labels must be an integer tensor, got {labels.dtype} "
                "(use labels.long())"
            )
    elif kind == "scalar":
        if labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"{who}: scalar labels must be real numbers, got {labels.dtype}")
        if labels.is_floating_point() and not torch.isfinite(labels).all():
            raise ValueError(f"{who}: labels contain NaN or inf")
    return labels.to(device) if device is not None else labels


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def prepare(x: Tensor, normalize: bool) -> Tensor:
    """Up-cast to the compute dtype and L2-normalise along the last dimension."""
    x = x.to(compute_dtype(x))
    return F.normalize(x, dim=-1) if normalize else x


def view_major(z: Tensor) -> Tensor:
    """``(N, M, D)`` -> ``(M*N, D)`` with row ``m*N + i`` holding view m of instance i."""
    n, m, d = z.shape
    return z.transpose(0, 1).reshape(m * n, d)


def anchors(z: Tensor, offset: int, count: int) -> Tensor:
    """Instances ``offset .. offset+count-1`` of ``z``; ``z`` itself when that is all of it
    (no slice in the autograd graph, so the whole-batch loss keeps its exact gradients)."""
    return z if offset == 0 and count == z.shape[0] else z[offset : offset + count]


def anchor_rows(z: Tensor, offset: int, count: int) -> tuple[Tensor, Tensor]:
    """The anchors of instances ``offset .. offset+count-1`` of ``(N, M, D)``, view-major:
    their rows ``(M*count, D)`` and those rows' ids ``(M*count,)`` in ``view_major(z)``
    (row ``m*count + k`` is view m of instance ``offset + k``, id ``m*N + offset + k``)."""
    n, m, _ = z.shape
    local = torch.arange(offset, offset + count, device=z.device)
    ids = (torch.arange(m, device=z.device)[:, None] * n + local).reshape(-1)
    return view_major(z[offset : offset + count]), ids


def instance_gram(z: Tensor) -> Tensor:
    """``(N, M, D)`` -> ``(N, M, M)`` similarities between the views of each instance."""
    return torch.einsum("nmd,nld->nml", z, z)


class MultiViewLoss(nn.Module):
    r"""Base class of manyview losses.

    Subclasses implement :meth:`compute` on a checked, up-cast and (by default) normalised
    ``(N, M, D)`` tensor, or ``compute_local`` (below), from which :meth:`compute` follows.
    Class attributes declare the contract (``docs/architecture.md``, "Loss inputs"):
    ``takes = "views"`` (embeddings of M views), ``min_views``, ``max_views`` (``None``:
    any), ``needs`` (keyword inputs that are required), ``inputs`` (optional keyword inputs
    it uses when a recipe has them, e.g. SupCon's ``labels``), ``label_kind``
    (``"class"`` or ``"scalar"``) and ``from_context`` (constructor arguments a recipe fills
    in, e.g. ``{"num_samples": "dataset_size"}``; see :mod:`manyview.context`).

    **Under torch.distributed** (``manyview.distributed.is_distributed()`` and a gather mode
    other than ``"none"``, see :func:`manyview.distributed.gather_mode`), :meth:`forward`
    gathers the prepared embeddings of all W ranks with gradients
    (:func:`~manyview.distributed.all_gather_with_grad`) and ``labels``/``index`` without,
    so the loss sees the global batch of G = W·n instances in rank order, then:

    - ``"full"``: ``compute(z_global, ...)`` on every rank — the same global loss everywhere;
    - ``"local_anchors"`` (default): ``compute_local(z_global, offset=r·n, count=n, ...)``,
      the mean over this rank's anchors only (instances ``offset .. offset+count-1`` of the
      global batch) against every global candidate, with every mask built from global ids.
      A loss without its own ``compute_local`` falls back to ``"full"``: exact, only W times
      the loss compute. So does a subclass that overrides ``compute`` but inherits
      ``compute_local`` (the two might no longer agree).

    Other keyword inputs (e.g. SupCon's ``mask``) are passed on as they are: under
    torch.distributed they must describe the global batch. Every rank must call the loss
    (the gather is a collective) with the same batch size; to evaluate a loss on one rank
    only, wrap the call in ``manyview.distributed.gather_mode("none")``.

    Why the parameter gradients equal one process on the concatenated batch: write the
    global loss as a mean over anchors, :math:`L = \frac1G\sum_a \ell_a(Z)`, where every
    term may depend on all of the global embeddings Z. Rank r computes
    :math:`L_r = \frac1n\sum_{a\in r}\ell_a(Z)` ("local_anchors") or :math:`L_r = L`
    ("full"); in both cases :math:`\sum_r L_r = W L` (n = G/W). The gather's backward sends
    rank r, for its own rows :math:`Z_r`, the sum over ranks of what every rank's loss sends
    them: :math:`\sum_{r'}\partial L_{r'}/\partial Z_r = W\,\partial L/\partial Z_r`.
    Rank r's parameter gradient is therefore :math:`W\,(\partial L/\partial Z_r)
    (\partial Z_r/\partial\theta)`, and DDP's average over the W ranks gives
    :math:`\sum_r (\partial L/\partial Z_r)(\partial Z_r/\partial\theta) =
    \partial L/\partial\theta`. Parameters of the loss itself (a learnable temperature)
    get :math:`\frac1W\sum_r\partial L_r/\partial\theta = \partial L/\partial\theta`
    directly. The value each rank returns is L itself in "full" mode and its own anchors'
    mean in "local_anchors" (the ranks' average is L).

    Args:
        normalize: L2-normalise each view's embeddings first (default ``True``).
    """

    takes: ClassVar[str] = "views"
    min_views: int = 2
    max_views: int | None = None
    min_batch: int = 2
    needs: tuple[str, ...] = ()
    inputs: ClassVar[tuple[str, ...]] = ()
    from_context: ClassVar[dict[str, str]] = {}
    label_kind: str = "class"

    def __init__(self, *, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize

    @property
    def loss_name(self) -> str:
        return type(self).__name__

    def forward(
        self,
        views: Views,
        *,
        labels: Tensor | None = None,
        index: Tensor | None = None,
        **kwargs: Any,
    ) -> Tensor:
        who = self.loss_name
        check_call_keywords(self, {"labels": labels, "index": index, **kwargs}, who)
        x = as_view_tensor(
            views,
            min_views=self.min_views,
            max_views=self.max_views,
            min_batch=self.min_batch,
            who=who,
        )
        n = x.shape[0]
        for need, value in (("labels", labels), ("index", index)):
            if need in self.needs and value is None:
                raise ValueError(f"{who} needs `{need}=` (a tensor of shape ({n},))")
        if labels is not None:
            labels = check_labels(labels, n, kind=self.label_kind, who=who, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            z = prepare(x, self.normalize)
            if distributed.is_distributed() and distributed.get_gather_mode() != "none":
                mode = distributed.get_gather_mode()
                out = self._compute_gathered(z, mode, labels=labels, index=index, **kwargs)
            else:
                out = self.compute(z, labels=labels, index=index, **kwargs)
        if not self.normalize:  # normalised embeddings cannot overflow (the temperature is checked)
            check_similarities_finite(out, z, who, getattr(self, "temperature", None))
        return out

    def _compute_gathered(
        self, z: Tensor, mode: str, *, labels: Tensor | None, index: Any, **kwargs: Any
    ) -> Tensor:
        """The loss on the gathered global batch (see the class docstring)."""
        n = z.shape[0]
        z_all = distributed.all_gather_with_grad(z)  # checks that the ranks' shapes agree
        if labels is not None:
            labels = distributed.all_gather_no_grad(labels, check_sizes=False)
        if index is not None:
            index = torch.as_tensor(index, device=z.device)
            if index.dim() != 1 or index.shape[0] != n:
                raise ValueError(
                    f"{self.loss_name}: index must have shape ({n},), got {tuple(index.shape)}"
                )
            index = distributed.all_gather_no_grad(index, check_sizes=False)
        with distributed.global_batch():  # a loss calling losses must not gather again
            if mode == "local_anchors" and self.has_local_anchors():
                offset = distributed.rank() * n
                return self.compute_local(  # type: ignore[attr-defined]
                    z_all, offset=offset, count=n, labels=labels, index=index, **kwargs
                )
            return self.compute(z_all, labels=labels, index=index, **kwargs)

    @classmethod
    def has_local_anchors(cls) -> bool:
        """Whether the class computes its own anchors' mean (``compute_local``) for the
        ``"local_anchors"`` gather mode: it must define ``compute_local`` in a class no
        higher up than the one defining ``compute``."""
        local_owner = next((k for k in cls.__mro__ if "compute_local" in vars(k)), None)
        if local_owner is None:
            return False
        compute_owner = next(k for k in cls.__mro__ if "compute" in vars(k))
        return issubclass(local_owner, compute_owner)

    def compute(
        self, z: Tensor, *, labels: Tensor | None, index: Tensor | None, **kwargs: Any
    ) -> Tensor:
        """The loss on the whole ``(N, M, D)`` batch. By default ``compute_local`` with
        every instance as an anchor (``offset=0, count=N``).

        A subclass may instead implement ``compute_local(z, *, offset, count, labels,
        index, **kwargs)``: the mean over the anchors of instances ``offset ..
        offset+count-1`` of ``z`` (the global batch under torch.distributed) against all of
        ``z``'s candidates, with labels/index of the whole ``z``."""
        local = getattr(self, "compute_local", None)
        if local is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement compute() or compute_local()"
            )
        return local(z, offset=0, count=z.shape[0], labels=labels, index=index, **kwargs)

    def example_inputs(
        self,
        n: int = 8,
        m: int | None = None,
        d: int = 16,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Tensor, dict[str, Any]]:
        """A valid ``(views, keyword inputs)`` pair for tests and benchmarks. ``index`` is
        ``arange(n)``, or for a loss with per-sample state (a ``num_samples`` attribute) n
        distinct random indices of its dataset."""
        if m is None:
            m = min(max(self.min_views, 3), self.max_views or 3)
        views = torch.randn(n, m, d, generator=generator, dtype=dtype)
        kwargs: dict[str, Any] = {}
        if "labels" in self.needs:
            if self.label_kind == "scalar":
                kwargs["labels"] = torch.randint(0, 10, (n,), generator=generator).to(dtype)
            else:
                kwargs["labels"] = torch.arange(n) % max(2, n // 2)
        if "index" in self.needs:
            samples = getattr(self, "num_samples", None)
            kwargs["index"] = (
                torch.arange(n)
                if samples is None
                else torch.randperm(samples, generator=generator)[:n]
            )
        return views, kwargs

    def extra_repr(self) -> str:
        parts = []
        for key in ("temperature", "normalize"):
            if hasattr(self, key) and not isinstance(getattr(self, key), Tensor | nn.Module):
                parts.append(f"{key}={getattr(self, key)}")
        return ", ".join(parts)


class ContrastiveLoss(MultiViewLoss):
    """Base class of the losses of the InfoNCE family whose similarities are divided by one
    temperature and whose log-partition functions an ``engine`` computes (``infonce``,
    ``mv_infonce``, ``mv_dhel``, ``dhel``, ``dcl``, ``dclw``, ``pvc``, ``supcon``).

    It keeps ``temperature`` (checked: a positive finite number) and ``engine`` (an
    :class:`~manyview.losses.engine.EngineConfig`, parsed from ``"auto"``, ``"dense"``,
    ``"tiled"`` or a table); :meth:`tiled` says whether a call tiles.

    Args:
        temperature: τ.
        normalize: L2-normalise each view's embeddings first (default ``True``).
        engine: how the log-partition functions are computed (docs/losses.md, "Tiled
            engine").
        who: the name that starts the engine's error messages (default: the class name).
    """

    def __init__(
        self,
        temperature: float,
        *,
        normalize: bool = True,
        engine: EngineOption = "auto",
        who: str | None = None,
    ) -> None:
        super().__init__(normalize=normalize)
        self.temperature = check_temperature(temperature, who=who or self.loss_name)
        self.engine = EngineConfig.parse(engine, who or self.loss_name)

    def tiled(self, entries: int) -> EngineConfig | None:
        """The engine config when a call whose dense form holds ``entries`` logits tiles
        (:meth:`~manyview.losses.engine.EngineConfig.use_tiled`), else ``None``."""
        return self.engine if self.engine.use_tiled(entries) else None


_FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def check_temperature(value: float, name: str = "temperature", who: str | None = None) -> float:
    """``value`` as a float if it is a positive finite number whose inverse is finite in
    float32 (a smaller temperature overflows every logit to inf), else a one-line
    ValueError naming ``name`` (:func:`manyview.options.check_positive`); ``None`` too.

    Raises:
        ValueError: ``"temperature must be a positive finite number, got None"``, or
            ``"temperature 1e-39 is too small: 1/temperature overflows float32 ..."``.
    """
    prefix = f"{who}: " if who else ""
    if value is None:
        raise ValueError(
            f"{prefix}{name} must be a positive finite number, got None; give one, e.g. {name}=0.1"
        )
    tau = check_positive(value, name, who)
    if 1.0 / tau > _FLOAT32_MAX:
        raise ValueError(
            f"{prefix}{name} {tau:g} is too small: 1/{name} overflows float32 (the logits "
            f"become inf); use a {name} of at least 1e-30 (typically 0.05 to 1)"
        )
    return tau
