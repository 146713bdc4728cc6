"""DDAE encoders: a diffusion network read as a representation (Xiang et al., "Denoising
Diffusion Autoencoders are Unified Self-supervised Learners", ICCV 2023; official code
``FutureXiang/ddae``, ``get_feature``).

The input is noised at a fixed DDPM timestep ``t`` with seeded noise, the network runs, a
named block's output is captured by a one-call :class:`~manyview_diffusion.taps.FeatureTap`
and pooled: GAP over (H, W) for feature maps, the token mean for DiT blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from manyview.encoders.attention import check_backend
from manyview.options import check_choice, check_int
from manyview_diffusion.attention import set_attention
from manyview_diffusion.networks import build_network, ddpm_scheduler, load_network
from manyview_diffusion.taps import POOLS, FeatureTap

__all__ = ["DDAEDiT", "DDAEEncoder", "DDAEUNet"]


class DDAEEncoder(nn.Module):
    """Shared part of :class:`DDAEUNet` and :class:`DDAEDiT` (see their docstrings)."""

    who: ClassVar[str] = "ddae"
    classes: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        network: str,
        config: Mapping[str, Any] | None,
        pretrained: str | Path | None,
        subfolder: str | None,
        block: str | None,
        t: int,
        num_train_timesteps: int,
        beta_start: float,
        beta_end: float,
        beta_schedule: str,
        seed: int,
        pool: str,
        normalize: bool,
        rescale: bool,
        attention: str,
    ) -> None:
        super().__init__()
        who = self.who
        backend = check_backend(attention, who)
        self.attention = "sdpa"  # the size probe below runs on the CPU
        if pretrained is not None and config is not None:
            raise ValueError(f"{who}: give config or pretrained, not both")
        if pretrained is not None:
            self.network = load_network(
                pretrained, who=who, classes=self.classes, subfolder=subfolder
            )
        else:
            self.network = build_network(network, config, who=who, classes=self.classes)
        self.num_train_timesteps = check_int(num_train_timesteps, "num_train_timesteps", who)
        self.t = check_int(t, "t", who, least=0)
        if self.t >= self.num_train_timesteps:
            raise ValueError(
                f"{who}: t must be a timestep of the schedule, in [0, "
                f"{self.num_train_timesteps - 1}], got {t!r}"
            )
        self.scheduler = ddpm_scheduler(
            self.num_train_timesteps, beta_start, beta_end, beta_schedule, who
        )
        self.seed = check_int(seed, "seed", who, least=0)
        self.configure()
        self.block = block or self.default_block()
        self.tap = FeatureTap(
            self.network,
            self.block,
            pool=check_choice(pool, POOLS[:-1], "pool", who),
            normalize=normalize,
            stop=True,
            who=who,
        )
        self.rescale = bool(rescale)
        cfg = self.network.config
        self.in_channels: int = int(cfg.in_channels)
        size = cfg.sample_size
        self.image_size: tuple[int, int] | None = (
            None if size is None else (size, size) if isinstance(size, int) else tuple(size)
        )
        with torch.no_grad():
            self.output_dim: int = int(self(self.example_inputs(1)).shape[-1])
        set_attention(self.network, backend, who=who)
        self.attention: str = backend

    # -- what each network class decides ---------------------------------------------
    def configure(self) -> None:
        """Check the class's own options against the built network (before the probe)."""

    def default_block(self) -> str:
        raise NotImplementedError

    def size_multiple(self) -> int:
        """The factor H and W must be a multiple of when the config has no sample_size."""
        return 1

    def run_network(self, x_t: Tensor, timesteps: Tensor) -> Any:
        raise NotImplementedError

    # -- the shared path -------------------------------------------------------------
    def example_inputs(self, n: int = 2) -> Tensor:
        """``n`` random images (n, C, H, W) in [0, 1] at the network's size (fixed seed)."""
        h, w = self.image_size or (8 * self.size_multiple(),) * 2
        return torch.rand(n, self.in_channels, h, w, generator=torch.Generator().manual_seed(0))

    def prepare(self, images: Any) -> Tensor:
        """The clean input x0 in [-1, 1]: checked, uint8 scaled to [0, 1], then mapped to
        [-1, 1] when ``rescale`` (DDAE's data range)."""
        who = self.who
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[0] == 0:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"{who}: expects images (N, C, H, W), got {shape}")
        if images.shape[1] != self.in_channels:
            raise ValueError(
                f"{who}: the network takes {self.in_channels}-channel images, got "
                f"{images.shape[1]} (shape {tuple(images.shape)}); set config in_channels "
                f"= {images.shape[1]} or convert the images in a view"
            )
        hw = tuple(images.shape[-2:])
        if self.image_size is not None and hw != self.image_size:
            raise ValueError(
                f"{who}: the network takes {self.image_size[0]}x{self.image_size[1]} images, "
                f"got {hw[0]}x{hw[1]}; resize them in a view or set config sample_size"
            )
        m = self.size_multiple()
        if self.image_size is None and (hw[0] % m or hw[1] % m):
            raise ValueError(f"{who}: image height and width must be multiples of {m}, got {hw}")
        param = next(self.network.parameters())
        if images.dtype == torch.uint8:
            x = images.to(param.device, param.dtype) / 255.0
        elif images.is_floating_point():
            x = images.to(param.device, param.dtype)
        else:
            raise ValueError(f"{who}: expects float or uint8 images, got {images.dtype}")
        return x * 2 - 1 if self.rescale else x

    def noise(self, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε (``DDPMScheduler.add_noise``), ε drawn from
        ``generator`` or, by default, a fresh generator seeded with ``seed`` (so the same
        images give the same features)."""
        if generator is None:
            generator = torch.Generator(device=x0.device).manual_seed(self.seed)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        timesteps = torch.full((x0.shape[0],), self.t, device=x0.device, dtype=torch.long)
        return self.scheduler.add_noise(x0, eps, timesteps)

    def forward(self, images: Any, generator: torch.Generator | None = None) -> Tensor:
        x0 = self.prepare(images)
        if self.attention == "xformers" and x0.device.type != "cuda":
            raise ValueError(
                f"{self.who}: attention 'xformers' runs on CUDA only, the encoder is on "
                f"{x0.device.type}; move it with .to('cuda') or use attention = 'sdpa'"
            )
        x_t = self.noise(x0, generator)
        timesteps = torch.full((x0.shape[0],), self.t, device=x0.device, dtype=torch.long)
        return self.tap(lambda: self.run_network(x_t, timesteps))[self.block]

    def extra_repr(self) -> str:
        return f"block={self.block!r}, t={self.t}, output_dim={getattr(self, 'output_dim', None)}"


class DDAEUNet(DDAEEncoder):
    """DDAE features of a diffusers ``UNet2DModel`` or ``UNet2DConditionModel``: images
    (N, C, H, W) to (N, output_dim).

    Args:
        network (`str`, defaults to ``"UNet2DModel"``): or ``"UNet2DConditionModel"``.
        config (`dict`, *optional*): constructor arguments updating the tiny defaults
            (:data:`~manyview_diffusion.networks.TINY_CONFIGS`: 16×16 RGB, 702k parameters).
        pretrained (`str`, *optional*): a local ``save_pretrained`` folder instead
            (``subfolder`` inside a pipeline folder); nothing is downloaded.
        block (`str`, defaults to ``"mid_block"``): the tapped module, e.g. ``up_blocks.0``
            (DDAE's best features come from a middle decoder block).
        t (`int`, defaults to ``11``): the DDPM timestep of the noise (DDAE's CIFAR-10
            probe uses 11 of 1000).
        num_train_timesteps, beta_start, beta_end, beta_schedule: the DDPM schedule
            (defaults 1000, 1e-4, 0.02, linear: DDPM's).
        seed (`int`, defaults to ``0``): the noise seed when no generator is passed.
        pool (`str`, defaults to ``"auto"``): ``gap`` for feature maps (see
            :data:`~manyview_diffusion.taps.POOLS`).
        normalize (`bool`, defaults to `False`): L2-normalise the features.
        rescale (`bool`, defaults to `True`): map [0, 1] images to [-1, 1].
        context_tokens (`int`, defaults to ``1``): for ``UNet2DConditionModel``, the
            number of all-zero ``encoder_hidden_states`` tokens (an empty condition).
        attention (`str`, defaults to ``"sdpa"``): or ``"xformers"`` (diffusers'
            ``enable_xformers_memory_efficient_attention``; CUDA only, see
            :func:`~manyview_diffusion.attention.set_attention`).

    Inputs: float images in [0, 1] (or uint8) with the network's channels and size.
    """

    who = "ddae_unet"
    classes = ("UNet2DModel", "UNet2DConditionModel")

    def __init__(
        self,
        network: str = "UNet2DModel",
        *,
        config: Mapping[str, Any] | None = None,
        pretrained: str | Path | None = None,
        subfolder: str | None = None,
        block: str | None = None,
        t: int = 11,
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        seed: int = 0,
        pool: str = "auto",
        normalize: bool = False,
        rescale: bool = True,
        context_tokens: int = 1,
        attention: str = "sdpa",
    ) -> None:
        self.context_tokens = check_int(context_tokens, "context_tokens", self.who)
        super().__init__(
            network=network,
            config=config,
            pretrained=pretrained,
            subfolder=subfolder,
            block=block,
            t=t,
            num_train_timesteps=num_train_timesteps,
            beta_start=beta_start,
            beta_end=beta_end,
            beta_schedule=beta_schedule,
            seed=seed,
            pool=pool,
            normalize=normalize,
            rescale=rescale,
            attention=attention,
        )

    def default_block(self) -> str:
        return "mid_block"

    def size_multiple(self) -> int:
        return 2 ** (len(self.network.config.block_out_channels) - 1)

    def run_network(self, x_t: Tensor, timesteps: Tensor) -> Any:
        if type(self.network).__name__ == "UNet2DConditionModel":
            dim = self.network.config.cross_attention_dim
            context = x_t.new_zeros(x_t.shape[0], self.context_tokens, dim)
            return self.network(x_t, timesteps, encoder_hidden_states=context)
        return self.network(x_t, timesteps)


class DDAEDiT(DDAEEncoder):
    """DDAE features of a diffusers ``DiTTransformer2DModel``: images (N, C, H, W) to the
    token mean of a transformer block's output (N, inner_dim).

    Args:
        config (`dict`, *optional*): constructor arguments updating the tiny defaults (2
            layers, 2 heads of 16, 8×8 RGB, patch 2: 60k parameters).
        pretrained, subfolder: a local ``save_pretrained`` folder instead (nothing is
            downloaded).
        block (`str`, *optional*): default the middle block, ``transformer_blocks.{L // 2}``
            (DDAE reads DiT-XL/2 at layer 13 of 28).
        class_label (`int`, *optional*): the class the network is conditioned on; default
            the null label (index ``num_embeds_ada_norm``, classifier-free guidance's).
        t, num_train_timesteps, beta_start, beta_end, beta_schedule, seed, pool, normalize,
            rescale, attention: as for :class:`DDAEUNet` (``pool="auto"`` is the token mean).
    """

    who = "ddae_dit"
    classes = ("DiTTransformer2DModel",)

    def __init__(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        pretrained: str | Path | None = None,
        subfolder: str | None = None,
        block: str | None = None,
        class_label: int | None = None,
        t: int = 11,
        num_train_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        seed: int = 0,
        pool: str = "auto",
        normalize: bool = False,
        rescale: bool = True,
        attention: str = "sdpa",
    ) -> None:
        self._class_label = class_label
        super().__init__(
            network="DiTTransformer2DModel",
            config=config,
            pretrained=pretrained,
            subfolder=subfolder,
            block=block,
            t=t,
            num_train_timesteps=num_train_timesteps,
            beta_start=beta_start,
            beta_end=beta_end,
            beta_schedule=beta_schedule,
            seed=seed,
            pool=pool,
            normalize=normalize,
            rescale=rescale,
            attention=attention,
        )

    def configure(self) -> None:
        classes = int(self.network.config.num_embeds_ada_norm or 0)
        label = self._class_label
        if label is None:
            label = classes
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label <= classes:
            raise ValueError(
                f"{self.who}: class_label must be an int in [0, {classes}] ({classes} is the "
                f"null label), got {self._class_label!r}"
            )
        self.class_label: int = label

    def default_block(self) -> str:
        return f"transformer_blocks.{self.network.config.num_layers // 2}"

    def size_multiple(self) -> int:
        return int(self.network.config.patch_size)

    def run_network(self, x_t: Tensor, timesteps: Tensor) -> Any:
        labels = torch.full((x_t.shape[0],), self.class_label, device=x_t.device)
        return self.network(x_t, timesteps, class_labels=labels)
