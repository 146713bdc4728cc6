"""Dual-time denoisers: the networks Self-E trains and flow matching trains on the same code
(Yu et al., "Self-Evaluation Unlocks Any-Step Text-to-Image Generation", arXiv 2512.22374,
eq. 6 and Appendix S.1).

The contract every denoiser here keeps::

    model(x_t, t, s, cond) -> V

- ``x_t`` (N, *shape): the noisy sample, ``x_t = (1 - t) x0 + t eps`` (t = 1 is pure noise);
- ``t`` and ``s`` (N,): floats in [0, 1] with ``s <= t``: the current time and the time the
  step lands on (``s = t`` is plain flow matching);
- ``cond`` (N, D) or (N, L, D): the text condition, one row per sample (the null prompt's
  encoding for an unconditional pass);
- ``V`` like ``x_t``: a velocity, ``eps - x0`` at ``s = t``; the clean estimate is
  ``x̂0 = x_t - t V`` (:meth:`DualTimeDenoiser.x0_from`).

The second time. Every backbone embeds a second time input by its own MLP over sinusoidal
features and adds it to the time embedding, so that it reaches every block the time
embedding reaches (Self-E: ẽ = MLP_t(sin t) + MLP_s(sin(t − s)), Appendix S.1). The second
input is the gap ``t - s`` (``second_time="gap"``, Self-E's) or ``s`` itself
(``second_time="s"``). ``zero_init_second_time=True`` zeroes the last layer of the second
time's MLP: at initialisation ``s`` changes nothing (exactly), and the network is a plain
flow-matching network ``V(x_t, t, cond)``.

- :class:`MLPDenoiser`: vectors (N, dim), for the 2-D toy and small tests.
- :class:`UNetDenoiser`: a diffusers ``UNet2DConditionModel`` (``cond`` as cross-attention
  tokens) or ``UNet2DModel`` (``cond`` pooled and projected into the time embedding), both
  with ``class_embed_type="timestep"``: ``timestep = 1000 t`` and
  ``class_labels = 1000 (t - s)`` through the UNet's own second ``TimestepEmbedding``.
- :class:`FluxDenoiser`: a diffusers ``FluxTransformer2DModel(guidance_embeds=True)`` whose
  guidance input is ``t - s``: the Flux time embedding ``timestep_embedder(sin 1000 t) +
  guidance_embedder(sin 1000 (t − s)) + text_embedder(pooled)`` is Self-E's ẽ (Self-E's
  backbone is FLUX-style).

Nothing here downloads: a UNet or Flux model is built from :data:`TINY_CONFIGS` updated
by a ``config`` dict, or read from a local ``save_pretrained`` folder
(``local_files_only=True``). :func:`check_denoiser` calls any model once on an example
and tells in one line whether it keeps the contract.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from manyview import did_you_mean
from manyview.options import check_choice, check_int

__all__ = [
    "SECOND_TIMES",
    "TINY_CONFIGS",
    "DualTimeDenoiser",
    "FluxDenoiser",
    "MLPDenoiser",
    "UNetDenoiser",
    "check_denoiser",
    "sinusoidal",
]

SECOND_TIMES: tuple[str, ...] = ("gap", "s")
"""What a denoiser embeds as its second time input: ``t - s`` (Self-E's) or ``s``."""

TIMESTEP_SCALE = 1000.0
"""Times in [0, 1] are multiplied by this before the sinusoidal features (diffusers'
convention: Flux multiplies its ``timestep`` and ``guidance`` by 1000 itself)."""

S_TOLERANCE = 1e-6
"""How far ``s`` may exceed ``t`` (rounding of a time grid) before it is an error; within
it, ``s`` is clamped to ``t``."""

TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "UNet2DConditionModel": {
        "sample_size": 8,
        "in_channels": 1,
        "out_channels": 1,
        "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
        "class_embed_type": "timestep",
    },
    "UNet2DModel": {
        "sample_size": 8,
        "in_channels": 1,
        "out_channels": 1,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
        "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
        "norm_num_groups": 8,
        "attention_head_dim": 8,
        "class_embed_type": "timestep",
    },
    "FluxTransformer2DModel": {
        "patch_size": 1,
        "in_channels": 16,
        "out_channels": 16,
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": 32,
        "pooled_projection_dim": 32,
        "guidance_embeds": True,
        "axes_dims_rope": (4, 6, 6),
    },
}
"""Tiny constructor arguments per diffusers class, the defaults a ``config`` dict updates:
the UNets for 1-channel 8×8 images (scikit-learn's digits), Flux for 4-channel 8×8 latents
in 2×2 patches (16 features a token; ``{"in_channels": 4, "out_channels": 4}`` for
1-channel images). Each has the second-time embedding switched on
(``class_embed_type="timestep"``, ``guidance_embeds=True``)."""

_UNETS = ("UNet2DConditionModel", "UNet2DModel")
_FLUX = ("FluxTransformer2DModel",)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__


# --------------------------------------------------------------------------------------------
# The base class and the contract check


class DualTimeDenoiser(nn.Module):
    """The base of the dual-time denoisers: ``model(x_t, t, s, cond) -> V`` (module
    docstring), with the input checks and :meth:`x0_from`.

    A subclass implements :meth:`velocity` (the network on checked inputs) and may refine
    :meth:`check_x` (the sample shape it takes) and :meth:`second_time_layer` (the last
    layer of its second time's MLP, which ``zero_init_second_time`` zeroes).

    Args:
        cond_dim (`int`): the width D of ``cond``'s last axis.
        second_time (`str`, defaults to ``"gap"``): ``"gap"`` embeds ``t - s``, ``"s"``
            embeds ``s``.
        zero_init_second_time (`bool`, defaults to `False`): whether the subclass zeroes
            :meth:`second_time_layer` once built (it calls :meth:`zero_second_time_`).

    Attributes:
        checks (`bool`): whether ``forward`` checks its inputs and output (default `True`;
            the checks read a few flags back from the device once a call).

    ``forward(x_t, t, s, cond)``: ``x_t`` a float tensor (N, *shape); ``t`` and ``s`` (N,)
    (a float or a 0-d tensor is broadcast to the batch) in [0, 1] with ``s <= t``
    (:data:`S_TOLERANCE` of rounding is clamped); ``cond`` (N, D) or (N, L, D); all finite.
    Returns ``V`` of ``x_t``'s shape. Bad inputs are one-line ``ValueError``\\ s.
    """

    who = "dual_time_denoiser"

    def __init__(
        self,
        cond_dim: int,
        *,
        second_time: str = "gap",
        zero_init_second_time: bool = False,
    ) -> None:
        super().__init__()
        self.cond_dim = check_int(cond_dim, "cond_dim", self.who)
        self.second_time = check_choice(second_time, SECOND_TIMES, "second_time", self.who)
        if not isinstance(zero_init_second_time, bool):
            raise ValueError(
                f"{self.who}: zero_init_second_time must be true or false, got "
                f"{zero_init_second_time!r}"
            )
        self.zero_init_second_time = zero_init_second_time
        self.checks = True

    # -- what a subclass provides ------------------------------------------------------
    def velocity(self, x_t: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
        """The network on checked inputs: ``x_t`` (N, *shape), ``t`` and ``s`` (N,) float,
        ``cond`` (N, D) or (N, L, D); returns V (N, *shape)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement velocity()")

    def check_x(self, x_t: Tensor) -> None:
        """Raise a one-line ``ValueError`` if ``x_t`` (a float tensor with a batch axis)
        is not a sample this network takes; the base accepts any."""

    def second_time_layer(self) -> nn.Linear:
        """The last layer of the second time's MLP (what ``zero_init_second_time``
        zeroes)."""
        raise NotImplementedError(f"{type(self).__name__} does not name its second-time layer")

    # -- shared ----------------------------------------------------------------------------
    def second(self, t: Tensor, s: Tensor) -> Tensor:
        """The second time input (N,): ``t - s`` (``second_time="gap"``) or ``s``."""
        return t - s if self.second_time == "gap" else s

    @torch.no_grad()
    def zero_second_time_(self) -> None:
        """Zero the weight and bias of :meth:`second_time_layer`: from now on until
        trained, ``s`` does not change the output."""
        layer = self.second_time_layer()
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()

    @staticmethod
    def x0_from(x_t: Tensor, t: Tensor | float, v: Tensor) -> Tensor:
        """The clean estimate ``x̂0 = x_t - t V`` (eq. 6) for ``x_t`` and ``v`` (N, *shape)
        and ``t`` (N,) (or a float)."""
        if not isinstance(t, Tensor):
            return x_t - float(t) * v
        t = t.to(device=x_t.device, dtype=torch.promote_types(x_t.dtype, t.dtype))
        return x_t - t.reshape(-1, *([1] * (x_t.dim() - 1))) * v

    def _time(self, value: Any, name: str, n: int, like: Tensor) -> Tensor:
        who = self.who
        dtype = torch.promote_types(like.dtype, torch.float32)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return torch.full((n,), float(value), dtype=dtype, device=like.device)
        if not isinstance(value, Tensor) or value.dtype == torch.bool:
            raise ValueError(
                f"{who}: {name} must be a float tensor (N,) of times in [0, 1], got "
                f"{type(value).__name__}"
            )
        if value.dim() == 0:
            value = value.expand(n)
        if value.shape != (n,):
            raise ValueError(
                f"{who}: {name} must have shape ({n},), one time per sample of x_t, got "
                f"{tuple(value.shape)}"
            )
        return value.to(device=like.device, dtype=dtype)

    def check_inputs(
        self, x_t: Any, t: Any, s: Any, cond: Any
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The inputs checked and normalised: ``t``, ``s`` as (N,) tensors of at least
        float32 on ``x_t``'s device, ``s`` clamped to ``t``; a one-line ``ValueError``
        naming the first problem."""
        who = self.who
        if not isinstance(x_t, Tensor) or not x_t.is_floating_point() or x_t.dim() < 2:
            raise ValueError(f"{who}: x_t must be a float tensor (N, ...), got {_shape(x_t)}")
        self.check_x(x_t)
        n = x_t.shape[0]
        t = self._time(t, "t", n, x_t)
        s = self._time(s, "s", n, x_t)
        if not isinstance(cond, Tensor) or not cond.is_floating_point() or cond.dim() not in (2, 3):
            raise ValueError(
                f"{who}: cond must be a float tensor (N, {self.cond_dim}) or "
                f"(N, L, {self.cond_dim}), got {_shape(cond)}"
            )
        if cond.shape[0] != n or cond.shape[-1] != self.cond_dim:
            want = f"({n}, {self.cond_dim}) or ({n}, L, {self.cond_dim})"
            raise ValueError(
                f"{who}: cond must be {want} (a row per sample of x_t, cond_dim "
                f"{self.cond_dim}), got {tuple(cond.shape)}"
            )
        flags = torch.stack(
            [
                ~torch.isfinite(x_t).all(),
                ~torch.isfinite(t).all() | ~torch.isfinite(s).all(),
                (t < 0).any() | (t > 1).any(),
                (s < 0).any() | (s > 1).any(),
                (s > t + S_TOLERANCE).any(),
                ~torch.isfinite(cond).all(),
            ]
        ).tolist()
        problems = (
            "x_t has non-finite values (NaN or inf)",
            "t or s has non-finite values (NaN or inf)",
            "t must lie in [0, 1] (t = 1 is pure noise)",
            "s must lie in [0, 1]",
            "s must not exceed t (s is the time the step lands on, s <= t)",
            "cond has non-finite values (NaN or inf)",
        )
        for bad, problem in zip(flags, problems, strict=True):
            if bad:
                raise ValueError(f"{who}: {problem}")
        return x_t, t, torch.minimum(s, t), cond.to(device=x_t.device)

    def forward(self, x_t: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
        if self.checks:
            x_t, t, s, cond = self.check_inputs(x_t, t, s, cond)
        v = self.velocity(x_t, t, s, cond)
        if self.checks and (not isinstance(v, Tensor) or v.shape != x_t.shape):
            raise ValueError(
                f"{self.who}: the network returned {_shape(v)} for x_t of shape "
                f"{tuple(x_t.shape)}; V must have x_t's shape"
            )
        return v

    def extra_repr(self) -> str:
        return (
            f"cond_dim={self.cond_dim}, second_time={self.second_time!r}, "
            f"zero_init_second_time={self.zero_init_second_time}"
        )


def check_denoiser(model: Any, example: Sequence[Any]) -> Tensor:
    """Call ``model`` once on ``example`` and check that it keeps the dual-time contract.

    Args:
        model: any callable, e.g. a :class:`DualTimeDenoiser`.
        example: ``(x_t, cond)`` (then ``t = 0.75`` and ``s = 0.25`` for every sample) or
            ``(x_t, t, s, cond)``.

    Returns:
        V, the model's output on the example (computed without gradients).

    Raises:
        ValueError: one line, when ``model`` cannot be called as ``model(x_t, t, s, cond)``
            (a model without the dual-time signature), fails on the example, or returns
            anything but a finite tensor of ``x_t``'s shape.
    """
    who = "check_denoiser"
    if not isinstance(example, Sequence) or len(example) not in (2, 4):
        raise ValueError(
            f"{who}: example must be (x_t, cond) or (x_t, t, s, cond), got "
            f"{type(example).__name__}"
            + (f" of length {len(example)}" if isinstance(example, Sequence) else "")
        )
    x_t = example[0]
    if not isinstance(x_t, Tensor) or x_t.dim() < 2:
        raise ValueError(f"{who}: the example's x_t must be a tensor (N, ...), got {_shape(x_t)}")
    if len(example) == 2:
        n = x_t.shape[0]
        t = torch.full((n,), 0.75, device=x_t.device)
        s = torch.full((n,), 0.25, device=x_t.device)
        cond = example[1]
    else:
        _, t, s, cond = example
    name = type(model).__name__
    contract = "model(x_t, t, s, cond) -> V"
    if not callable(model):
        raise ValueError(f"{who}: the model must be callable as {contract}, got a {name}")
    try:
        inspect.signature(model).bind(x_t, t, s, cond)
    except TypeError as error:
        raise ValueError(
            f"{who}: {name} is a model without the dual-time signature {contract} "
            f"({_first_line(error)}); wrap it, e.g. lambda x_t, t, s, cond: ..."
        ) from None
    except ValueError:  # no signature to read (a builtin): the call below decides
        pass
    try:
        with torch.no_grad():
            v = model(x_t, t, s, cond)
    except TypeError as error:
        raise ValueError(
            f"{who}: {name} cannot be called as {contract}: {_first_line(error)}"
        ) from None
    except Exception as error:
        raise ValueError(
            f"{who}: {name} failed on the example (x_t {tuple(x_t.shape)}, cond "
            f"{_shape(cond)}): {type(error).__name__}: {_first_line(error)}"
        ) from None
    if not isinstance(v, Tensor):
        hint = (
            " (a diffusers model: wrap it in UNetDenoiser or FluxDenoiser)"
            if hasattr(v, "sample")
            else ""
        )
        raise ValueError(f"{who}: {name} returned a {type(v).__name__}, not a tensor V{hint}")
    if v.shape != x_t.shape:
        raise ValueError(
            f"{who}: {name} returned V of shape {tuple(v.shape)} for x_t of shape "
            f"{tuple(x_t.shape)}; V must have x_t's shape"
        )
    if not torch.isfinite(v).all():
        raise ValueError(f"{who}: {name} returned non-finite values (NaN or inf) on the example")
    return v


# --------------------------------------------------------------------------------------------
# MLP


def sinusoidal(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal features (N, dim) of times t (N,) in [0, 1]: [cos(1000 t f_k), sin(1000 t
    f_k)] with f_k = 10000^(−k/(dim/2)), k < dim/2 (an odd dim gets a zero column), in float32.

    It equals diffusers' ``get_timestep_embedding(1000 t, dim, flip_sin_to_cos=True,
    downscale_freq_shift=0)`` (Flux's time features), written out so that the MLP does not
    import diffusers."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(-math.log(10000.0) * k / half)
    args = (t.float() * TIMESTEP_SCALE)[:, None] * freqs[None]
    out = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return nn.functional.pad(out, (0, dim % 2))


def _time_mlp(time_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))


class MLPDenoiser(DualTimeDenoiser):
    """A dual-time MLP on vectors (N, dim): the 2-D toy's network.

    ``e = MLP_t(sin t) + MLP_2(sin(second))`` (two MLPs of ``time_dim`` → ``hidden`` →
    ``hidden``), plus ``Linear(cond)`` with ``cond_mode="add"``; then ``layers`` hidden
    layers ``h ← SiLU(Linear(h) + e)`` (every layer sees the embedding) from the input
    ``x_t`` (``[x_t, cond]`` with ``cond_mode="concat"``) and a linear output to ``dim``.
    A ``cond`` (N, L, D) is averaged over its L tokens.

    Args:
        dim (`int`): the vectors' width.
        cond_dim (`int`): the condition's width D.
        hidden (`int`, defaults to ``128``): the hidden and embedding width.
        layers (`int`, defaults to ``3``): hidden layers.
        time_dim (`int`, defaults to ``64``): sinusoidal features per time input.
        cond_mode (`str`, defaults to ``"concat"``): ``"concat"`` (cond joins the input)
            or ``"add"`` (a projection of cond joins the embedding).
        second_time, zero_init_second_time: see :class:`DualTimeDenoiser`.
    """

    who = "mlp_denoiser"

    def __init__(
        self,
        dim: int,
        cond_dim: int,
        hidden: int = 128,
        layers: int = 3,
        time_dim: int = 64,
        *,
        cond_mode: str = "concat",
        second_time: str = "gap",
        zero_init_second_time: bool = False,
    ) -> None:
        super().__init__(
            cond_dim, second_time=second_time, zero_init_second_time=zero_init_second_time
        )
        who = self.who
        self.dim = check_int(dim, "dim", who)
        self.hidden = check_int(hidden, "hidden", who)
        self.time_dim = check_int(time_dim, "time_dim", who, least=2)
        depth = check_int(layers, "layers", who)
        self.cond_mode = check_choice(cond_mode, ("concat", "add"), "cond_mode", who)
        self.time_mlp = _time_mlp(self.time_dim, self.hidden)
        self.second_mlp = _time_mlp(self.time_dim, self.hidden)
        self.cond_proj = nn.Linear(self.cond_dim, self.hidden) if self.cond_mode == "add" else None
        width = self.dim + (self.cond_dim if self.cond_mode == "concat" else 0)
        self.layers = nn.ModuleList(
            nn.Linear(width if i == 0 else self.hidden, self.hidden) for i in range(depth)
        )
        self.out = nn.Linear(self.hidden, self.dim)
        if zero_init_second_time:
            self.zero_second_time_()

    def second_time_layer(self) -> nn.Linear:
        return self.second_mlp[-1]

    def check_x(self, x_t: Tensor) -> None:
        if x_t.dim() != 2 or x_t.shape[1] != self.dim:
            raise ValueError(
                f"{self.who}: x_t must be (N, {self.dim}) vectors, got {tuple(x_t.shape)}"
            )

    def velocity(self, x_t: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
        dtype = self.out.weight.dtype
        c = (cond.mean(dim=1) if cond.dim() == 3 else cond).to(dtype)
        emb = self.time_mlp(sinusoidal(t, self.time_dim).to(dtype))
        emb = emb + self.second_mlp(sinusoidal(self.second(t, s), self.time_dim).to(dtype))
        h = x_t.to(dtype)
        if self.cond_proj is not None:
            emb = emb + self.cond_proj(c)
        else:
            h = torch.cat([h, c], dim=1)
        for layer in self.layers:
            h = nn.functional.silu(layer(h) + emb)
        return self.out(h).to(x_t.dtype)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, hidden={self.hidden}, time_dim={self.time_dim}, "
            f"cond_mode={self.cond_mode!r}, {super().extra_repr()}"
        )


# --------------------------------------------------------------------------------------------
# diffusers backbones: building and loading


def _build(name: str, config: Mapping[str, Any] | None, who: str, forced: Mapping[str, Any]):
    """diffusers ``name`` from :data:`TINY_CONFIGS` updated by ``config``; the ``forced``
    arguments (the second-time embedding) may not be changed."""
    if config is not None and not isinstance(config, Mapping):
        raise ValueError(
            f"{who}: config must be a table of {name} constructor arguments, got "
            f"{type(config).__name__}"
        )
    import diffusers

    cls = getattr(diffusers, name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    user = dict(config or {})
    for key, value in user.items():
        if key not in params:
            raise ValueError(
                f"{who}: config key {key!r} is not an argument of diffusers {name}"
                f"{did_you_mean(key, params)}"
            )
        if key in forced and value != forced[key]:
            raise ValueError(
                f"{who}: config {key} must be {forced[key]!r} (the second time's embedding), "
                f"got {value!r}"
            )
    kwargs = {**TINY_CONFIGS[name], **user}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, AssertionError, KeyError) as error:
        raise ValueError(f"{who}: config: {name} refuses it: {_first_line(error)}") from None


def _load(folder: str | Path, subfolder: str | None, classes: Sequence[str], who: str):
    """The diffusers model (one of ``classes``) in the local ``save_pretrained`` folder."""
    path = Path(folder).expanduser()
    if subfolder:
        path = path / subfolder
    config = path / "config.json"
    if not config.is_file():
        what = "does not exist" if not path.is_dir() else "has no config.json"
        raise ValueError(
            f"{who}: pretrained folder {str(path)!r} {what}; give a local folder written by "
            "save_pretrained (nothing is downloaded)"
        )
    try:
        meta = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{who}: {str(config)!r} is not valid JSON: re-save the model") from None
    name = meta.get("_class_name") if isinstance(meta, dict) else None
    if name not in classes:
        raise ValueError(
            f"{who}: {str(config)!r} describes a {name!r}, not one of {', '.join(classes)}"
        )
    import diffusers

    try:
        return getattr(diffusers, name).from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as error:
        raise ValueError(
            f"{who}: cannot load the {name} in {str(path)!r}: {_first_line(error)}"
        ) from None


def _network(
    network: Any,
    config: Mapping[str, Any] | None,
    pretrained: str | Path | None,
    subfolder: str | None,
    classes: Sequence[str],
    forced: Mapping[str, Any],
    who: str,
) -> nn.Module:
    """The diffusers model a denoiser wraps: a given module, a built one or a loaded one."""
    if isinstance(network, nn.Module):
        if config is not None or pretrained is not None:
            raise ValueError(f"{who}: give a network module, or config / pretrained, not both")
        if type(network).__name__ not in classes:
            raise ValueError(
                f"{who}: network must be a diffusers {' or '.join(classes)}, got "
                f"{type(network).__name__}"
            )
        return network
    if network is not None and (not isinstance(network, str) or network not in classes):
        raise ValueError(
            f"{who}: network must be one of {', '.join(classes)} (or a module), got "
            f"{network!r}{did_you_mean(str(network), classes)}"
        )
    if pretrained is not None:
        if config is not None:
            raise ValueError(f"{who}: give config or pretrained, not both")
        model = _load(pretrained, subfolder, [network] if network else classes, who)
    else:
        model = _build(network or classes[0], config, who, forced)
    return model


def _cond_proj(cond_dim: int | None, width: int) -> tuple[int, nn.Module]:
    """``cond_dim`` (default ``width``) and Identity when they agree, else a Linear."""
    cond_dim = width if cond_dim is None else cond_dim
    return cond_dim, nn.Identity() if cond_dim == width else nn.Linear(cond_dim, width)


# --------------------------------------------------------------------------------------------
# UNets


class UNetDenoiser(DualTimeDenoiser):
    """A diffusers UNet with ``class_embed_type="timestep"`` as a dual-time denoiser of
    images (N, C, H, W).

    ``V = unet(x_t, timestep=1000 t, class_labels=1000 (t − s))``: the second time goes
    through the UNet's ``time_proj`` and its own ``TimestepEmbedding``
    (``class_embedding``) and is added to the time embedding, which every ResNet block
    reads. ``cond`` enters

    - ``UNet2DConditionModel``: as cross-attention tokens (``encoder_hidden_states``):
      (N, D) becomes one token (N, 1, D), (N, L, D) stays L tokens; projected by a Linear
      to ``cross_attention_dim`` when D differs from it.
    - ``UNet2DModel`` (no cross-attention): pooled (the mean over L tokens of a (N, L, D)
      cond) and projected by ``cond_proj = Linear(D, time_embed_dim)`` into the time
      embedding: a forward hook on ``time_embedding`` adds it to the MLP's output for the
      duration of one call, as EDM adds its augmentation labels (the hook is removed when
      the call returns or raises).

    Args:
        network (`str` or `nn.Module`, *optional*): ``"UNet2DConditionModel"`` (default when
            building) or ``"UNet2DModel"``, or a diffusers model of one of them (wrapped, not
            copied).
        config (`dict`, *optional*): constructor arguments over :data:`TINY_CONFIGS`
            (``class_embed_type`` must stay ``"timestep"``).
        pretrained (`str` or `Path`, *optional*): a local ``save_pretrained`` folder
            (``subfolder``, e.g. ``"unet"``, inside a pipeline folder); its config must have
            ``class_embed_type="timestep"``.
        cond_dim (`int`, *optional*): the condition's width D; default the width the UNet
            reads (``cross_attention_dim``; for ``UNet2DModel`` its time embedding width).
        second_time, zero_init_second_time: see :class:`DualTimeDenoiser` (the zeroed layer
            is ``class_embedding.linear_2``; on a loaded model it overwrites those weights).

    Attributes:
        network: the diffusers UNet.
        cond_proj: the condition's projection (``nn.Identity`` when none is needed).
    """

    who = "unet_denoiser"

    def __init__(
        self,
        network: str | nn.Module | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        pretrained: str | Path | None = None,
        subfolder: str | None = None,
        cond_dim: int | None = None,
        second_time: str = "gap",
        zero_init_second_time: bool = False,
    ) -> None:
        who = self.who
        unet = _network(
            network,
            config,
            pretrained,
            subfolder,
            _UNETS,
            {"class_embed_type": "timestep"},
            who,
        )
        cfg = unet.config
        if cfg.class_embed_type != "timestep":
            raise ValueError(
                f"{who}: the {type(unet).__name__} has class_embed_type="
                f"{cfg.class_embed_type!r}; the second time needs class_embed_type='timestep'"
            )
        out = cfg.out_channels if cfg.out_channels is not None else cfg.in_channels
        if out != cfg.in_channels:
            raise ValueError(
                f"{who}: the UNet has in_channels={cfg.in_channels} but out_channels={out}; a "
                "velocity has the input's channels"
            )
        self.is_conditional = type(unet).__name__ == "UNet2DConditionModel"
        if self.is_conditional:
            width = cfg.cross_attention_dim
            if not isinstance(width, int):
                raise ValueError(f"{who}: cross_attention_dim must be one int, got {width!r}")
            cond_dim, proj = _cond_proj(cond_dim, width)
        else:
            width = unet.time_embedding.linear_2.out_features
            cond_dim = width if cond_dim is None else cond_dim
            proj = None
        super().__init__(
            cond_dim, second_time=second_time, zero_init_second_time=zero_init_second_time
        )
        self.network = unet
        self.cond_proj = proj if proj is not None else nn.Linear(self.cond_dim, width)
        self.channels = int(cfg.in_channels)
        self.multiple = 2 ** (len(cfg.block_out_channels) - 1)
        if zero_init_second_time:
            self.zero_second_time_()

    @property
    def config(self) -> Any:
        """The UNet's diffusers config."""
        return self.network.config

    def second_time_layer(self) -> nn.Linear:
        return self.network.class_embedding.linear_2

    def check_x(self, x_t: Tensor) -> None:
        if x_t.dim() != 4 or x_t.shape[1] != self.channels:
            raise ValueError(
                f"{self.who}: x_t must be images (N, {self.channels}, H, W), got {tuple(x_t.shape)}"
            )
        if x_t.shape[2] % self.multiple or x_t.shape[3] % self.multiple:
            raise ValueError(
                f"{self.who}: x_t's height and width must be multiples of {self.multiple} "
                f"(the UNet halves them {self.multiple.bit_length() - 1} times), got "
                f"{tuple(x_t.shape[2:])}"
            )

    def velocity(self, x_t: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
        unet = self.network
        dtype = unet.dtype
        timestep = t * TIMESTEP_SCALE
        labels = self.second(t, s) * TIMESTEP_SCALE
        c = cond.to(dtype)
        if self.is_conditional:
            tokens = self.cond_proj(c.unsqueeze(1) if c.dim() == 2 else c)
            out = unet(
                x_t.to(dtype),
                timestep,
                encoder_hidden_states=tokens,
                class_labels=labels,
                return_dict=False,
            )[0]
            return out.to(x_t.dtype)
        add = self.cond_proj(c.mean(dim=1) if c.dim() == 3 else c)

        def hook(module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
            return output + add.to(output.dtype)

        # first of the hooks, so that any other (a feature tap) sees what the blocks read
        handle = unet.time_embedding.register_forward_hook(hook, prepend=True)
        try:
            out = unet(x_t.to(dtype), timestep, class_labels=labels, return_dict=False)[0]
        finally:
            handle.remove()
        return out.to(x_t.dtype)

    def extra_repr(self) -> str:
        return f"network={type(self.network).__name__}, {super().extra_repr()}"


# --------------------------------------------------------------------------------------------
# Flux


class FluxDenoiser(DualTimeDenoiser):
    """A diffusers ``FluxTransformer2DModel(guidance_embeds=True)`` as a dual-time denoiser
    of images or latents (N, C, H, W), the guidance input carrying the second time.

    diffusers' Flux multiplies ``timestep`` and ``guidance`` by 1000 before its sinusoidal
    features (its pipeline passes ``t`` in [0, 1]); this wrapper passes ``timestep = t`` and
    ``guidance = t − s`` (or ``s``), so the embedding every block reads is
    ``timestep_embedder(sin 1000 t) + guidance_embedder(sin 1000 (t − s)) +
    text_embedder(pooled)``: Self-E's ẽ plus the pooled text.

    The image is cut into ``patch × patch`` patches, one token each of ``C · patch²``
    features in (channel, row, column) order (diffusers' Flux pipeline ``_pack_latents``,
    for ``patch=2``), which must be the model's ``in_channels``; ``img_ids`` (L, 3) hold
    (0, patch row, patch column) and ``txt_ids`` (L_text, 3) zeros, without a batch axis.
    ``cond`` (N, D) is one text token, (N, L, D) L tokens: ``encoder_hidden_states`` are
    the tokens (projected to ``joint_attention_dim`` when D differs) and
    ``pooled_projections`` their mean (projected to ``pooled_projection_dim`` when D
    differs).

    Args:
        network (`nn.Module`, *optional*): a diffusers ``FluxTransformer2DModel`` with
            guidance embeddings (wrapped, not copied).
        config (`dict`, *optional*): constructor arguments over :data:`TINY_CONFIGS`
            (``guidance_embeds`` must stay true).
        pretrained (`str` or `Path`, *optional*): a local ``save_pretrained`` folder
            (``subfolder``, e.g. ``"transformer"``, inside a pipeline folder).
        patch (`int`, defaults to ``2``): the patch side.
        cond_dim (`int`, *optional*): the condition's width D; default
            ``joint_attention_dim``.
        second_time, zero_init_second_time: see :class:`DualTimeDenoiser` (the zeroed layer
            is ``time_text_embed.guidance_embedder.linear_2``).

    Attributes:
        network: the diffusers transformer.
        txt_proj, pooled_proj: the condition's projections (``nn.Identity`` when none is
            needed).
    """

    who = "flux_denoiser"

    def __init__(
        self,
        network: nn.Module | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        pretrained: str | Path | None = None,
        subfolder: str | None = None,
        patch: int = 2,
        cond_dim: int | None = None,
        second_time: str = "gap",
        zero_init_second_time: bool = False,
    ) -> None:
        who = self.who
        if isinstance(network, str):
            network = None if network == _FLUX[0] else network
        model = _network(
            network, config, pretrained, subfolder, _FLUX, {"guidance_embeds": True}, who
        )
        cfg = model.config
        if not cfg.guidance_embeds:
            raise ValueError(
                f"{who}: the FluxTransformer2DModel has guidance_embeds=False; the second time "
                "needs guidance_embeds=True"
            )
        patch = check_int(patch, "patch", who)
        per_token = int(cfg.in_channels)
        out = cfg.out_channels if cfg.out_channels is not None else cfg.in_channels
        if per_token % (patch * patch) or out != per_token:
            raise ValueError(
                f"{who}: in_channels ({per_token}) and out_channels ({out}) must be equal and "
                f"a multiple of patch² ({patch * patch}): C · patch² features a token"
            )
        cond_dim, txt_proj = _cond_proj(cond_dim, int(cfg.joint_attention_dim))
        _, pooled_proj = _cond_proj(cond_dim, int(cfg.pooled_projection_dim))
        super().__init__(
            cond_dim, second_time=second_time, zero_init_second_time=zero_init_second_time
        )
        self.network = model
        self.txt_proj = txt_proj
        self.pooled_proj = pooled_proj
        self.patch = patch
        self.channels = per_token // (patch * patch)
        if zero_init_second_time:
            self.zero_second_time_()

    @property
    def config(self) -> Any:
        """The transformer's diffusers config."""
        return self.network.config

    def second_time_layer(self) -> nn.Linear:
        return self.network.time_text_embed.guidance_embedder.linear_2

    def check_x(self, x_t: Tensor) -> None:
        p = self.patch
        if x_t.dim() != 4 or x_t.shape[1] != self.channels:
            raise ValueError(
                f"{self.who}: x_t must be images (N, {self.channels}, H, W), got {tuple(x_t.shape)}"
            )
        if x_t.shape[2] % p or x_t.shape[3] % p:
            raise ValueError(
                f"{self.who}: x_t's height and width must be multiples of the patch ({p}), "
                f"got {tuple(x_t.shape[2:])}"
            )

    def patchify(self, x: Tensor) -> Tensor:
        """(N, C, H, W) → tokens (N, (H/p)(W/p), C p²)."""
        n, c, h, w = x.shape
        p = self.patch
        x = x.view(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(n, (h // p) * (w // p), c * p * p)

    def unpatchify(self, tokens: Tensor, h: int, w: int) -> Tensor:
        """Tokens (N, (H/p)(W/p), C p²) → (N, C, H, W), the inverse of :meth:`patchify`."""
        n, p = tokens.shape[0], self.patch
        x = tokens.view(n, h // p, w // p, -1, p, p).permute(0, 3, 1, 4, 2, 5)
        return x.reshape(n, -1, h, w)

    def image_ids(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """``img_ids`` (L, 3): (0, patch row, patch column) per token, no batch axis."""
        rows = torch.arange(h // self.patch, device=device, dtype=dtype)
        cols = torch.arange(w // self.patch, device=device, dtype=dtype)
        grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)
        return torch.cat([torch.zeros_like(grid[:, :1]), grid], dim=1)

    def velocity(self, x_t: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
        flux = self.network
        dtype = flux.dtype
        h, w = x_t.shape[2:]
        c = cond.to(dtype)
        tokens = c.unsqueeze(1) if c.dim() == 2 else c
        out = flux(
            hidden_states=self.patchify(x_t.to(dtype)),
            encoder_hidden_states=self.txt_proj(tokens),
            pooled_projections=self.pooled_proj(tokens.mean(dim=1)),
            timestep=t,
            guidance=self.second(t, s),
            img_ids=self.image_ids(h, w, x_t.device, dtype),
            txt_ids=torch.zeros(tokens.shape[1], 3, device=x_t.device, dtype=dtype),
            return_dict=False,
        )[0]
        return self.unpatchify(out, h, w).to(x_t.dtype)

    def extra_repr(self) -> str:
        return f"patch={self.patch}, {super().extra_repr()}"
