"""EDM's non-leaking augmentation: the augmentation labels go into the network's time
embedding (Karras et al., "Elucidating the Design Space of Diffusion-Based Generative
Models", NeurIPS 2022, Appendix F.2; official code ``NVlabs/edm``, ``training/augment.py``
``AugmentPipe`` and ``training/networks.py`` ``augment_dim`` / ``map_augment``). The pipeline
is the geometric part of Karras et al., "Training Generative Adversarial Networks with
Limited Data" (NeurIPS 2020).

- :class:`EDMAugment` — ``aug(images, generator=g) -> (augmented (N, C, H, W), labels
  (N, label_dim))``. EDM's CIFAR-10 options are the defaults (``p=0.12``, ``xflip=1e8``,
  ``yflip``, ``scale``, ``rotate_frac``, ``aniso``, ``translate_frac``: 9 labels).
- :class:`AugmentConditioned` — a diffusers network whose time embedding gets
  ``Linear(augment_dim, width, bias=False)(labels)``; ``aug_labels=None`` or all-zero
  labels compute exactly the plain network (a transform that is not applied has label 0).

The label layout, one column group per enabled transform in this order (EDM's):

=================  =======  =========================================================
transform          columns  label
=================  =======  =========================================================
``xflip``          1        1 if flipped left-right
``yflip``          1        1 if flipped upside-down
``rotate_int``     2        the 90° rotation k ∈ {0..3} as (k ∈ {1, 2}, k ∈ {2, 3})
``translate_int``  2        integer shift (x, y) / (size · ``translate_int_max``)
``scale``          1        w, the scale being 2^(w · ``scale_std``)
``rotate_frac``    2        (cos θ − 1, sin θ)
``aniso``          2        (w cos r, w sin r): scale 2^(w · ``aniso_std``) along angle r
``translate_frac`` 2        (wx, wy), the shift being w · size · ``translate_frac_std``
=================  =======  =========================================================

EDM's color transforms (brightness, contrast, luma flip, hue, saturation; off in all its
configurations) are not implemented.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.options import check_choice, check_fraction, check_int, check_non_negative
from manyview_diffusion.networks import unwrap_network

__all__ = ["SYM6", "AugmentConditioned", "EDMAugment"]

SYM6: tuple[float, ...] = (
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
)
"""The low-pass decomposition filter of Daubechies' symlet 6 (12 taps, summing to √2): the
anti-aliasing filter of EDM's (and StyleGAN2-ADA's) 2× supersampled geometric transforms."""

_ORDER = (
    "xflip",
    "yflip",
    "rotate_int",
    "translate_int",
    "scale",
    "rotate_frac",
    "aniso",
    "translate_frac",
)
_WIDTH = {
    "xflip": 1,
    "yflip": 1,
    "rotate_int": 2,
    "translate_int": 2,
    "scale": 1,
    "rotate_frac": 2,
    "aniso": 2,
    "translate_frac": 2,
}


def _affine(a: Tensor, b: Tensor, c: Tensor, d: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """(N, 3, 3) matrices [[a, b, tx], [c, d, ty], [0, 0, 1]] from (N,) entries."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = [torch.stack(r, dim=-1) for r in ((a, b, tx), (c, d, ty), (zero, zero, one))]
    return torch.stack(rows, dim=-2)


def _rotation(theta: Tensor) -> Tensor:
    zero = torch.zeros_like(theta)
    return _affine(theta.cos(), -theta.sin(), theta.sin(), theta.cos(), zero, zero)


def _scaling(sx: Tensor, sy: Tensor) -> Tensor:
    zero = torch.zeros_like(sx)
    return _affine(sx, zero, zero, sy, zero, zero)


def _translation(tx: Tensor, ty: Tensor) -> Tensor:
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return _affine(one, zero, zero, one, tx, ty)


def _const(value: float, like: Tensor) -> Tensor:
    return torch.full((like.shape[0],), float(value), dtype=like.dtype, device=like.device)


class EDMAugment(nn.Module):
    """EDM's ``AugmentPipe`` (pixel blitting and geometric transforms) with labels.

    Each transform ``k`` with multiplier ``m_k > 0`` is applied to an image with
    probability ``p · m_k`` (a multiplier of 1e8, EDM's ``xflip``, makes it certain; the
    flip itself is then a fair coin) and contributes its label columns (module docstring);
    those are 0 where it is not applied. Geometric transforms compose one inverse matrix
    per image, executed as EDM does: reflect-pad by the margin the transformed corners
    need, upsample 2× with :data:`SYM6`, ``F.affine_grid`` + bilinear ``F.grid_sample``,
    filter and downsample 2×. Only images that got a geometric transform are resampled
    (EDM resamples the whole batch), so an image with all-zero labels is returned exactly.

    Args:
        p (`float`, defaults to ``0.12``): the overall probability (EDM's CIFAR-10 ``--augment``).
        xflip, yflip, rotate_int, translate_int, scale, rotate_frac, aniso, translate_frac
            (`float`): the multipliers; 0 switches a transform and its labels off. Defaults:
            EDM's CIFAR-10 (1e8, 1, 0, 0, 1, 1, 1, 1).
        translate_int_max (`float`, defaults to ``0.125``): the largest integer shift, a
            fraction of the size.
        scale_std (`float`, defaults to ``0.2``): log2 std of isotropic scaling.
        rotate_frac_max (`float`, defaults to ``1``): the rotation range, 1 = ±180°.
        aniso_std (`float`, defaults to ``0.2``): log2 std of anisotropic scaling.
        aniso_rotate_prob (`float`, defaults to ``0.5``): the probability that anisotropic
            scaling is along a random angle instead of the axes.
        translate_frac_std (`float`, defaults to ``0.125``): std of fractional shifts, a
            fraction of the size.

    Call: ``aug(images, generator=None)`` with float images (N, C, H, W) (any range; EDM
    uses [-1, 1]); every random number comes from ``generator`` (on the images' device;
    ``None``: torch's global generator). Returns ``(augmented, labels)``: the images'
    shape and dtype, and float32 labels (N, :attr:`label_dim`).
    """

    who = "edm_augment"

    def __init__(
        self,
        p: float = 0.12,
        *,
        xflip: float = 1e8,
        yflip: float = 1,
        rotate_int: float = 0,
        translate_int: float = 0,
        scale: float = 1,
        rotate_frac: float = 1,
        aniso: float = 1,
        translate_frac: float = 1,
        translate_int_max: float = 0.125,
        scale_std: float = 0.2,
        rotate_frac_max: float = 1,
        aniso_std: float = 0.2,
        aniso_rotate_prob: float = 0.5,
        translate_frac_std: float = 0.125,
    ) -> None:
        super().__init__()
        who = self.who
        self.p = check_fraction(p, "p", who)
        given = {
            "xflip": xflip,
            "yflip": yflip,
            "rotate_int": rotate_int,
            "translate_int": translate_int,
            "scale": scale,
            "rotate_frac": rotate_frac,
            "aniso": aniso,
            "translate_frac": translate_frac,
        }
        self.strength = {k: check_non_negative(v, k, who) for k, v in given.items()}
        self.translate_int_max = check_fraction(translate_int_max, "translate_int_max", who)
        self.scale_std = check_non_negative(scale_std, "scale_std", who)
        self.rotate_frac_max = check_fraction(rotate_frac_max, "rotate_frac_max", who)
        self.aniso_std = check_non_negative(aniso_std, "aniso_std", who)
        self.aniso_rotate_prob = check_fraction(aniso_rotate_prob, "aniso_rotate_prob", who)
        self.translate_frac_std = check_non_negative(translate_frac_std, "translate_frac_std", who)
        self.enabled: tuple[str, ...] = tuple(k for k in _ORDER if self.strength[k] > 0)

    @property
    def label_dim(self) -> int:
        """The number of label columns: 9 for EDM's CIFAR-10 options."""
        return sum(_WIDTH[k] for k in self.enabled)

    def extra_repr(self) -> str:
        on = ", ".join(f"{k}={self.strength[k]:g}" for k in self.enabled)
        return f"p={self.p:g}, {on}, label_dim={self.label_dim}"

    # -- random numbers, all from one generator --------------------------------------
    def _check(self, images: Any, generator: torch.Generator | None) -> None:
        who = self.who
        if not isinstance(images, Tensor) or images.dim() != 4 or 0 in images.shape:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"{who}: expects images (N, C, H, W), got {shape}")
        if not images.is_floating_point():
            raise ValueError(
                f"{who}: expects float images, got {images.dtype}; convert them first "
                "(e.g. images.float() / 127.5 - 1 for uint8)"
            )
        if generator is not None:
            if not isinstance(generator, torch.Generator):
                raise ValueError(
                    f"{who}: generator must be a torch.Generator, got {type(generator).__name__}"
                )
            if generator.device.type != images.device.type:
                raise ValueError(
                    f"{who}: the generator is on {generator.device.type} but the images are "
                    f"on {images.device.type}; make it with torch.Generator(device=images.device)"
                )
        if self.strength["translate_int"] > 0 and min(images.shape[-2:]) < 2:
            raise ValueError(f"{who}: translate_int needs images of at least 2x2")

    def forward(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        self._check(images, generator)
        n, _, h, w = images.shape
        dev = images.device
        f32 = torch.float32

        def rand(*shape: int) -> Tensor:
            return torch.rand(shape, generator=generator, device=dev, dtype=f32)

        def randn(*shape: int) -> Tensor:
            return torch.randn(shape, generator=generator, device=dev, dtype=f32)

        def coin(k: int) -> Tensor:
            return torch.randint(k, (n,), generator=generator, device=dev)

        def applied(name: str, *shape: int) -> Tensor:
            return rand(*shape) < self.strength[name] * self.p

        labels: list[Tensor] = []
        s = self.strength
        # pixel blitting: exact, on every image
        if s["xflip"] > 0:
            k = coin(2)
            k = torch.where(applied("xflip", n), k, 0)
            images = torch.where((k == 1).view(n, 1, 1, 1), images.flip(3), images)
            labels.append(k.to(f32))
        if s["yflip"] > 0:
            k = coin(2)
            k = torch.where(applied("yflip", n), k, 0)
            images = torch.where((k == 1).view(n, 1, 1, 1), images.flip(2), images)
            labels.append(k.to(f32))
        if s["rotate_int"] > 0:
            if h != w:
                raise ValueError(f"{self.who}: rotate_int needs square images, got {h}x{w}")
            k = coin(4)
            k = torch.where(applied("rotate_int", n), k, 0).view(n, 1, 1, 1)
            images = torch.where((k == 1) | (k == 2), images.flip(3), images)
            images = torch.where((k == 2) | (k == 3), images.flip(2), images)
            images = torch.where((k == 1) | (k == 3), images.transpose(2, 3), images)
            labels += [((k == 1) | (k == 2)).to(f32).view(n), ((k == 2) | (k == 3)).to(f32).view(n)]
        if s["translate_int"] > 0:
            shift = rand(2, n) * 2 - 1
            shift = torch.where(applied("translate_int", 1, n), shift, 0)
            tx = (shift[0] * (w * self.translate_int_max)).round().long()
            ty = (shift[1] * (h * self.translate_int_max)).round().long()
            images = self._shift(images, tx, ty)
            labels += [tx / (w * self.translate_int_max), ty / (h * self.translate_int_max)]

        # geometric transforms: one inverse matrix per image (output -> input pixels)
        g_inv = torch.eye(3, device=dev, dtype=f32).expand(n, 3, 3)
        moved = torch.zeros(n, dtype=torch.bool, device=dev)
        if s["scale"] > 0:
            z = randn(n)
            on = applied("scale", n)
            z = torch.where(on, z, 0)
            scale = torch.exp2(z * self.scale_std)
            g_inv = g_inv @ _scaling(1 / scale, 1 / scale)
            labels.append(z)
            moved |= on
        if s["rotate_frac"] > 0:
            theta = (rand(n) * 2 - 1) * (math.pi * self.rotate_frac_max)
            on = applied("rotate_frac", n)
            theta = torch.where(on, theta, 0)
            g_inv = g_inv @ _rotation(theta)
            labels += [theta.cos() - 1, theta.sin()]
            moved |= on
        if s["aniso"] > 0:
            z = randn(n)
            r = (rand(n) * 2 - 1) * math.pi
            on = applied("aniso", n)
            z = torch.where(on, z, 0)
            r = torch.where(rand(n) < self.aniso_rotate_prob, r, 0)
            a = torch.exp2(z * self.aniso_std)
            g_inv = g_inv @ _rotation(-r) @ _scaling(1 / a, a) @ _rotation(r)
            labels += [z * r.cos(), z * r.sin()]
            moved |= on
        if s["translate_frac"] > 0:
            z = randn(2, n)
            on = applied("translate_frac", 1, n)
            z = torch.where(on, z, 0)
            g_inv = g_inv @ _translation(
                -z[0] * (w * self.translate_frac_std), -z[1] * (h * self.translate_frac_std)
            )
            labels += [z[0], z[1]]
            moved |= on[0]
        if bool(moved.any()):
            index = moved.nonzero().squeeze(1)
            moved_images = self._resample(images[index], g_inv[index])
            images = images.index_copy(0, index, moved_images)
        if not labels:
            return images, torch.zeros(n, 0, device=dev, dtype=f32)
        return images, torch.stack([x.view(n) for x in labels], dim=1)

    @staticmethod
    def _shift(images: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
        """Per-image integer shift by (tx, ty) pixels, the border mirrored (EDM's
        ``translate_int``): output pixel (y, x) reads input (y + ty reflected, x − tx
        reflected)."""
        n, c, h, w = images.shape
        dev = images.device
        xs = torch.arange(w, device=dev).view(1, w) - tx.view(n, 1)  # (N, W)
        ys = torch.arange(h, device=dev).view(1, h) + ty.view(n, 1)  # (N, H)
        xs = (w - 1) - ((w - 1) - xs.remainder(2 * w - 2)).abs()
        ys = (h - 1) - ((h - 1) - ys.remainder(2 * h - 2)).abs()
        rows = images.gather(2, ys.view(n, 1, h, 1).expand(n, c, h, w))
        return rows.gather(3, xs.view(n, 1, 1, w).expand(n, c, h, w))

    @staticmethod
    def _resample(images: Tensor, g_inv: Tensor) -> Tensor:
        """Images (M, C, H, W) transformed by the inverse matrices (M, 3, 3) in pixel
        coordinates centred on the image: reflect-pad, 2× up with SYM6, bilinear sample,
        SYM6 filter and 2× down (EDM's geometric execution)."""
        m, c, h, w = images.shape
        dev, dtype = images.device, images.dtype
        f32 = torch.float32
        taps = len(SYM6)
        pad = taps // 4
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = torch.tensor(
            [[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=dev, dtype=f32
        )
        reach = (g_inv @ corners.t())[:, :2, :]  # (M, xy, 4)
        reach = reach.permute(1, 0, 2).flatten(1)  # (xy, M·4)
        margin = torch.cat([-reach, reach]).amax(dim=1)  # x0, y0, x1, y1
        margin = margin + torch.tensor([2 * pad - cx, 2 * pad - cy] * 2, device=dev)
        margin = margin.clamp(min=0)
        margin = torch.minimum(margin, torch.tensor([w - 1, h - 1] * 2, device=dev, dtype=f32))
        mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
        x = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        one = torch.ones(m, device=dev, dtype=f32)
        g = _translation(_const((mx0 - mx1) / 2, one), _const((my0 - my1) / 2, one)) @ g_inv

        # 2× up: zeros between the samples, then the (flipped) filter along each axis
        kernel = torch.tensor(SYM6, device=dev, dtype=dtype)
        up = kernel.flip(0)
        ph, pw = x.shape[-2:]
        x = torch.stack([x, torch.zeros_like(x)], dim=4).reshape(m, c, ph, 2 * pw)[..., :-1]
        x = F.conv2d(x, up.view(1, 1, 1, taps).repeat(c, 1, 1, 1), groups=c, padding=(0, taps // 2))
        x = torch.stack([x, torch.zeros_like(x)], dim=3).reshape(m, c, 2 * ph, -1)[:, :, :-1]
        x = F.conv2d(x, up.view(1, 1, taps, 1).repeat(c, 1, 1, 1), groups=c, padding=(taps // 2, 0))
        two = _const(2, one)
        half = _const(-0.5, one)
        g = _scaling(two, two) @ g @ _scaling(1 / two, 1 / two)
        g = _translation(half, half) @ g @ _translation(-half, -half)

        # sample on the 2× grid of the (pad-enlarged) output, in affine_grid's [-1, 1] units
        out_h, out_w = (h + 2 * pad) * 2, (w + 2 * pad) * 2
        src = _scaling(_const(2 / x.shape[3], one), _const(2 / x.shape[2], one))
        dst = _scaling(_const(out_w / 2, one), _const(out_h / 2, one))
        g = src @ g @ dst
        grid = F.affine_grid(g[:, :2, :], [m, c, out_h, out_w], align_corners=False)
        x = F.grid_sample(
            x, grid.to(dtype), mode="bilinear", padding_mode="zeros", align_corners=False
        )

        # filter and 2× down, then crop the pad
        down = kernel.view(1, 1, 1, taps).repeat(c, 1, 1, 1)
        x = F.conv2d(x, down, groups=c, stride=(1, 2), padding=(0, (taps - 1) // 2))
        x = x[..., pad:-pad]
        down = kernel.view(1, 1, taps, 1).repeat(c, 1, 1, 1)
        x = F.conv2d(x, down, groups=c, stride=(2, 1), padding=((taps - 1) // 2, 0))
        return x[:, :, pad:-pad, :]


# --------------------------------------------------------------------------------------------
# The network side: the labels in the time embedding


class AugmentConditioned(nn.Module):
    """A diffusers ``UNet2DModel``, ``UNet2DConditionModel`` or ``DiTTransformer2DModel``
    whose time embedding gets ``map_augment(aug_labels)``, ``map_augment = Linear(
    augment_dim, width, bias=False)`` (EDM's ``augment_dim`` / ``map_augment``).

    Where the vector is added (``at``):

    - ``"input"`` (default, EDM's): to the sinusoidal timestep embedding entering the
      embedding MLP (diffusers ``TimestepEmbedding``), as EDM adds it to the noise embedding
      before ``map_layer0``: a forward pre-hook on ``time_embedding`` (UNets) or on each DiT
      block's ``norm1.emb.timestep_embedder``.
    - ``"output"``: to the MLP's output, the vector the blocks read: a forward hook on
      ``time_embedding`` (UNets) or on each DiT block's ``norm1.emb``.

    A DiT computes the embedding in every block (``norm1.emb``) and its output layer calls
    block 0's ``norm1.emb`` once more after the blocks. That call gets the label too: in
    DiT (Peebles & Xie, ICCV 2023) one conditioning vector drives every block and the final
    layer, so every computation of it sees the same labels.

    Args:
        network: the diffusers model (wrapped, not copied), or a wrapper of one (e.g.
            :class:`~manyview_diffusion.selfcond.SelfConditioned`: the two compose in either
            order).
        augment_dim (`int`, defaults to ``9``): :attr:`EDMAugment.label_dim`.
        at (`str`, defaults to ``"input"``): or ``"output"``.

    ``map_augment`` is initialised as EDM's CIFAR-10 networks (``SongUNet``) do,
    Xavier-uniform: the labels change the output from the first step, while a zero label
    (no augmentation) adds exactly nothing.

    Call: ``wrapped(*args, aug_labels=None, **kwargs)``, the network's own arguments plus
    ``aug_labels`` (N, augment_dim); returns what the network does.
    """

    who = "augment_conditioned"

    def __init__(self, network: nn.Module, augment_dim: int = 9, *, at: str = "input") -> None:
        super().__init__()
        who = self.who
        self.network = network
        base = unwrap_network(network)
        self.augment_dim = check_int(augment_dim, "augment_dim", who)
        self.at = check_choice(at, ("input", "output"), "at", who)
        self.is_dit = hasattr(base, "transformer_blocks")
        if self.is_dit:
            embedders = []
            for i, block in enumerate(base.transformer_blocks):
                emb = getattr(getattr(block, "norm1", None), "emb", None)
                if emb is None or not hasattr(emb, "timestep_embedder"):
                    raise ValueError(
                        f"{who}: transformer_blocks.{i}.norm1 has no timestep embedding "
                        "(norm_type 'ada_norm_zero', DiT's, has one)"
                    )
                embedders.append(emb)
            mlp = embedders[0].timestep_embedder
            self.targets = (
                [e.timestep_embedder for e in embedders] if self.at == "input" else embedders
            )
        elif hasattr(base, "up_blocks") and hasattr(base, "time_embedding"):
            mlp = base.time_embedding
            self.targets = [mlp]
        else:
            raise ValueError(
                f"{who}: wraps a diffusers UNet2DModel, UNet2DConditionModel or "
                f"DiTTransformer2DModel, got {type(base).__name__}"
            )
        width = mlp.linear_1.in_features if self.at == "input" else mlp.linear_2.out_features
        self.map_augment = nn.Linear(self.augment_dim, int(width), bias=False)
        nn.init.xavier_uniform_(self.map_augment.weight)
        self.injections = 0  # embeddings changed in the last forward (a diagnostic)

    @property
    def config(self) -> Any:
        """The wrapped network's diffusers config."""
        return unwrap_network(self.network).config

    def extra_repr(self) -> str:
        return f"augment_dim={self.augment_dim}, at={self.at!r}"

    def _labels(self, labels: Any, batch: int | None) -> Tensor:
        who = self.who
        if not isinstance(labels, Tensor) or labels.dim() != 2:
            shape = tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
            raise ValueError(
                f"{who}: aug_labels must be a tensor (N, {self.augment_dim}), got {shape}"
            )
        if labels.shape[1] != self.augment_dim:
            raise ValueError(
                f"{who}: aug_labels has {labels.shape[1]} columns but augment_dim is "
                f"{self.augment_dim}; set augment_dim = EDMAugment(...).label_dim"
            )
        if batch is not None and labels.shape[0] != batch:
            raise ValueError(
                f"{who}: aug_labels has {labels.shape[0]} rows for a batch of {batch} images"
            )
        if not labels.is_floating_point():
            labels = labels.float()
        return labels

    def forward(self, *args: Any, aug_labels: Tensor | None = None, **kwargs: Any) -> Any:
        self.injections = 0
        if aug_labels is None:
            return self.network(*args, **kwargs)
        sample = args[0] if args else kwargs.get("sample", kwargs.get("hidden_states"))
        batch = sample.shape[0] if isinstance(sample, Tensor) and sample.dim() > 0 else None
        labels = self._labels(aug_labels, batch)

        def add(emb: Tensor) -> Tensor:
            self.injections += 1
            a = self.map_augment(labels.to(device=emb.device, dtype=self.map_augment.weight.dtype))
            return emb + a.to(emb.dtype)

        def pre(module: nn.Module, inputs: tuple) -> tuple:
            return (add(inputs[0]), *inputs[1:])

        def post(module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
            return add(output)

        handles = []
        for target in self.targets:
            if self.at == "input":
                handles.append(target.register_forward_pre_hook(pre, prepend=True))
            else:  # first of the hooks, so that a SelfConditioned gate sees e_t + a
                handles.append(target.register_forward_hook(post, prepend=True))
        try:
            return self.network(*args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
