"""The ``diffusion`` recipe: train a diffusers network with a diffusion objective, read it
as a representation (DDAE), optionally self-conditioned (DDAE++), with a MoCo-v3 term and
representation alignment (REPA).

- DDAE: Xiang et al., "Denoising Diffusion Autoencoders are Unified Self-supervised
  Learners", ICCV 2023 (``FutureXiang/ddae``): the EMA network's block features at a fixed
  small noise level, pooled, are the embeddings (:meth:`DiffusionRecipe.encode`).
- DDAE++: Xiang et al., arXiv 2505.10999: self-conditioning
  (:class:`~manyview_diffusion.selfcond.SelfConditioned`) and a MoCo-v3 contrastive
  self-distillation term (Chen, Xie, He, "An Empirical Study of Training Self-Supervised
  Vision Transformers", ICCV 2021, ``facebookresearch/moco-v3``): two augmented views
  noised at a small level, the query through the online network, projector and predictor,
  the key through the EMA network and projector, InfoNCE at τ = 0.2, symmetrised.
- REPA: Yu et al., "Representation Alignment for Generation", ICLR 2025
  (``sihyun-yu/REPA``, ``loss.py``): an MLP projection of a block's features on the noisy
  training input, aligned by negative cosine similarity to a frozen encoder's features of
  the clean image, weight 0.5.

The EMA of the network is the core ``ema`` teacher (the ``[teacher]`` table; ``ema`` with
momentum 0.999 when absent). Its averaged copy is also part of the recipe's ``model`` (as
``model.ema``), so ``model.safetensors`` holds the weights the benchmarks read, and
``run.baseline()`` resets both to the initial weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.config import ConfigError
from manyview.context import BuildContext
from manyview.options import check_choice, check_fraction, check_int, check_positive
from manyview.recipes import (
    Recipe,
    StepOutput,
    build_teacher,
    first_sample,
    option_switch,
    option_table,
    recipe_options,
    sub_options,
)
from manyview_diffusion.networks import build_network, load_network
from manyview_diffusion.objectives import DDPMLoss, EDMLoss, FlowMatchingLoss
from manyview_diffusion.taps import FeatureTap, pool_features, resolve_module

__all__ = ["DiffusionModel", "DiffusionRecipe"]

WHO = "diffusion recipe"
NETWORKS = ("UNet2DModel", "UNet2DConditionModel", "DiTTransformer2DModel")
OBJECTIVES: dict[str, type[nn.Module]] = {
    "ddpm": DDPMLoss,
    "edm": EDMLoss,
    "flow_matching": FlowMatchingLoss,
}
DEFAULT_SAMPLE_STEPS = {"ddpm": 50, "edm": 18, "flow_matching": 50}
PROBE_LEVELS: dict[str, tuple[Any, ...]] = {
    "ddpm": (1, 11, 21, 51),
    "edm": (0.023, 0.06, 0.14, 0.3),
    "flow_matching": (0.01, 0.02, 0.05, 0.1),
}

DEFAULTS: dict[str, Any] = {
    "modality": "image",
    "network": "UNet2DModel",
    "network_config": {},
    "pretrained": "",
    "subfolder": "",
    "objective": "ddpm",
    "objective_options": {},
    "class_conditional": False,
    "label_dropout": 0.1,
    "self_condition": False,
    "self_condition_options": {},
    "augment": False,
    "augment_options": {},
    "moco": False,
    "moco_options": {},
    "align": False,
    "align_options": {},
    "feature_block": "",
    "feature_level": None,
    "feature_seed": 0,
    "sample_steps": 0,
}
MOCO_DEFAULTS: dict[str, Any] = {
    "weight": 1.0,
    "tau": 0.2,
    "level": None,
    "feature": "auto",
    "dim": 64,
    "hidden": 256,
    "augment": {"p": 0.5},
}
ALIGN_DEFAULTS: dict[str, Any] = {
    "teacher": None,
    "block": "",
    "weight": 0.5,
    "hidden": 256,
    "image_size": 0,
}


class MLP(nn.Sequential):
    """Linear–SiLU–Linear–SiLU–Linear, REPA's projector shape; ``(..., in) -> (..., out)``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, out_dim),
        )


class DiffusionModel(nn.Module):
    """What the recipe trains: ``network`` (a diffusers model, possibly wrapped by
    :class:`~manyview_diffusion.selfcond.SelfConditioned`) and the heads of the optional
    terms (``moco_proj``, ``moco_pred``, ``align_proj``); the recipe adds ``ema``, the
    teacher's averaged copy of all of it."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.heads = nn.ModuleDict()

    @property
    def base(self) -> nn.Module:
        """The diffusers model itself (inside any wrapper)."""
        net = self.network
        while isinstance(getattr(net, "network", None), nn.Module):
            net = net.network
        return net


class DiffusionRecipe(Recipe):
    """Train a diffusers network on images with DDPM, EDM or flow matching (module
    docstring). ``[recipe_options]``:

    - ``modality`` (``"image"``): the dataset's entry with images ``(C, H, W)`` in [0, 1]
      (mapped to [-1, 1] for the network).
    - ``network`` (``"UNet2DModel"``, ``"UNet2DConditionModel"``, ``"DiTTransformer2DModel"``)
      and ``network_config`` (constructor arguments over the tiny defaults; channels and
      size default to the data's), or ``pretrained`` (+ ``subfolder``): a local
      ``save_pretrained`` folder (nothing is downloaded).
    - ``objective`` (``"ddpm"``, ``"edm"``, ``"flow_matching"``) and ``objective_options``
      (the :mod:`~manyview_diffusion.objectives` classes' arguments).
    - ``class_conditional`` (false): the labels condition the network (``num_class_embeds``
      of a ``UNet2DModel``, the DiT's label embedding), dropped to the null label with
      probability ``label_dropout`` (0.1) for classifier-free guidance.
    - ``self_condition`` (false) and ``self_condition_options`` (``source``, ``hidden``,
      ``gate``, ``zero_init_last``, ``stop_grad``): DDAE++ self-conditioning.
    - ``moco`` (false) and ``moco_options``: ``weight`` (1.0), ``tau`` (0.2), ``level`` (the
      views' noise level; default the feature level), ``feature`` (``"auto"``: u of the
      self-conditioning when on, else the pooled bottleneck; or a block name), ``dim``
      (64) and ``hidden`` (256) of the projector and predictor, ``augment`` (the two
      views' :class:`~manyview_diffusion.augment.EDMAugment` options, ``{ p = 0.5 }``).
    - ``augment`` (false) and ``augment_options``: EDM augmentation of the diffusion
      loss's inputs, its labels added to the time embedding
      (:class:`~manyview_diffusion.augment.AugmentConditioned`; ``at`` goes to it, the
      rest to :class:`~manyview_diffusion.augment.EDMAugment`).
    - ``align`` (false) and ``align_options``: ``teacher`` (a teacher table, e.g.
      ``{ name = "frozen", options = { run = "runs/encoder" } }``; it embeds the clean
      images), ``block`` (default the bottleneck), ``weight`` (0.5), ``hidden`` (256),
      ``image_size`` (resize the images the teacher sees; 0 keeps them).
    - ``feature_block`` (default the bottleneck: ``mid_block`` or the middle DiT block),
      ``feature_level`` (default the objective's: DDPM t = 11, EDM σ = 0.06, flow t =
      0.02) and ``feature_seed`` (0): what :meth:`encode` reads.
    - ``sample_steps`` (default 50 for DDPM and flow matching, 18 for EDM).

    The ``[teacher]`` table must build an averaging teacher with a ``module`` (``ema``).
    """

    uses_teacher = True
    example_config: ClassVar[str | None] = """
[run]
recipe = "diffusion"
steps = 4
batch_size = 8
[data]
name = "digits"
options = { size = 8, limit = 64 }
[recipe_options]
network = "UNet2DModel"
network_config = { block_out_channels = [16, 32], norm_num_groups = 8 }
self_condition = true
moco = true
moco_options = { dim = 16, hidden = 32 }
[teacher]
name = "ema"
options = { momentum = 0.9 }
"""

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        super().__init__()
        try:
            self._setup(config, dataset)
        except ConfigError:
            raise
        except ValueError as exc:  # an option's own check: the same one line, as a ConfigError
            raise ConfigError(str(exc)) from None

    def _setup(self, config: Mapping[str, Any], dataset: Any) -> None:
        self.augment: nn.Module | None = None
        if config.get("losses"):
            raise ConfigError(
                "[[losses]]: the diffusion recipe's objective is [recipe_options] objective "
                "(ddpm, edm, flow_matching); remove the [[losses]] tables"
            )
        if config.get("modalities"):
            raise ConfigError(
                "[modalities]: the diffusion recipe reads the dataset's images directly; "
                "remove the [modalities] tables (set [recipe_options] modality instead)"
            )
        opts = recipe_options(config, DEFAULTS, "diffusion")
        self.modality = str(opts["modality"])
        sample = first_sample(dataset, (self.modality,))
        image = sample[self.modality]
        if not isinstance(image, Tensor) or image.dim() != 3 or not image.is_floating_point():
            got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise ConfigError(
                f"{WHO}: the dataset's {self.modality!r} samples must be float images "
                f"(C, H, W) in [0, 1], got {got}"
            )
        self.image_shape = tuple(int(d) for d in image.shape)
        self.objective_name = check_choice(
            opts["objective"], tuple(OBJECTIVES), "objective", "[recipe_options]"
        )
        self.objective = self._build_part(
            OBJECTIVES[self.objective_name], opts["objective_options"], "objective_options"
        )
        self.conditional = option_switch(opts["class_conditional"], "class_conditional")
        self.num_classes: int | None = None
        if self.conditional:
            if "label" not in sample:
                raise ConfigError(f"{WHO}: class_conditional needs samples with a 'label'")
            self.num_classes = int(getattr(dataset, "num_classes", 0) or 0) or self._count(dataset)
        self.label_dropout = check_fraction(opts["label_dropout"], "label_dropout", WHO)
        network = self._network(opts)
        self.network_class = type(network).__name__
        if option_switch(opts["augment"], "augment"):
            network = self._augmented(network, opts["augment_options"])
        if option_switch(opts["self_condition"], "self_condition"):
            from manyview_diffusion.selfcond import SelfConditioned

            network = self._build_part(
                SelfConditioned,
                opts["self_condition_options"],
                "self_condition_options",
                network,
            )
        self.model = DiffusionModel(network)
        base = self.model.base
        self.bottleneck = (
            "mid_block"
            if hasattr(base, "mid_block") and base.mid_block is not None
            else f"transformer_blocks.{max(len(getattr(base, 'transformer_blocks', [1])) // 2 - 1, 0)}"
        )
        self.feature_block = str(opts["feature_block"] or self.bottleneck)
        self._check_block(self.feature_block, "feature_block")
        level = opts["feature_level"]
        if level is None:
            level = self.objective.default_feature_level
        self.feature_level = self._level(level, "feature_level")
        self.feature_seed = check_int(opts["feature_seed"], "feature_seed", WHO, least=0)
        steps = opts["sample_steps"] or DEFAULT_SAMPLE_STEPS[self.objective_name]
        self.sample_steps = check_int(steps, "sample_steps", WHO)

        self.moco = None
        if option_switch(opts["moco"], "moco"):
            self.moco = sub_options(opts["moco_options"], MOCO_DEFAULTS, "moco_options")
            self._build_moco()
        self.align = None
        self.align_teacher: nn.Module | None = None
        if option_switch(opts["align"], "align"):
            self.align = sub_options(opts["align_options"], ALIGN_DEFAULTS, "align_options")
            self._build_align(dataset)

        spec = config.get("teacher") or {"name": "ema", "options": {"momentum": 0.999}}
        context = BuildContext(
            student=self.model,
            modality=self.modality,
            modalities=(self.modality,),
            steps=config["run"]["steps"],
            dataset_size=len(dataset),
        )
        teacher = build_teacher(spec, context)
        module = getattr(teacher, "module", None)
        if not isinstance(module, DiffusionModel):
            raise ConfigError(
                f"[teacher] ({spec['name']}): the diffusion recipe needs an averaging teacher "
                'of its network (name = "ema"), one with a `module` copy of the model'
            )
        self.teacher = teacher
        self.model.ema = module  # shared: the averaged weights are in model.safetensors

    # ------------------------------------------------------------------ building
    @staticmethod
    def _build_part(cls: type, options: Any, name: str, *args: Any) -> Any:
        options = option_table(options, name)
        try:
            return cls(*args, **options)
        except TypeError as exc:
            raise ConfigError(f"[recipe_options] {name}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"[recipe_options] {name}: {exc}") from None

    @staticmethod
    def _count(dataset: Any) -> int:
        labels = getattr(dataset, "labels", None)
        if isinstance(labels, Tensor):
            return int(labels.max()) + 1
        return max(int(dataset[i]["label"]) for i in range(len(dataset))) + 1

    def _network(self, opts: Mapping[str, Any]) -> nn.Module:
        name = opts["network"]
        c, h, w = self.image_shape
        try:
            if opts["pretrained"]:
                if opts["network_config"]:
                    raise ValueError("give network_config or pretrained, not both")
                net = load_network(
                    opts["pretrained"],
                    who=WHO,
                    classes=NETWORKS,
                    subfolder=opts["subfolder"] or None,
                )
            else:
                user = option_table(opts["network_config"], "network_config")
                defaults: dict[str, Any] = {"in_channels": c, "out_channels": c, "sample_size": h}
                if self.conditional and name == "UNet2DModel":
                    defaults["num_class_embeds"] = self.num_classes + 1  # + the null label
                if name == "DiTTransformer2DModel":
                    defaults["num_embeds_ada_norm"] = self.num_classes or 1
                net = build_network(name, {**defaults, **user}, who=WHO, classes=NETWORKS)
        except ValueError as exc:
            raise ConfigError(f"[recipe_options] network: {exc}") from None
        cfg = net.config
        size = cfg.sample_size
        size = (size, size) if isinstance(size, int) else tuple(size or (h, w))
        if int(cfg.in_channels) != c or size != (h, w):
            raise ConfigError(
                f"{WHO}: the network takes {cfg.in_channels}x{size[0]}x{size[1]} images, the "
                f"dataset gives {c}x{h}x{w}; set the dataset's size/channels or network_config "
                "in_channels/sample_size"
            )
        if (
            type(net).__name__ == "UNet2DModel"
            and self.conditional
            and getattr(net, "class_embedding", None) is None
        ):
            raise ConfigError(f"{WHO}: class_conditional needs a UNet2DModel with num_class_embeds")
        return net

    def _augmented(self, network: nn.Module, options: Any) -> nn.Module:
        from manyview_diffusion.augment import AugmentConditioned, EDMAugment

        options = option_table(options, "augment_options")
        at = options.pop("at", "input")
        self.augment = self._build_part(EDMAugment, options, "augment_options")
        return self._build_part(
            AugmentConditioned,
            {"augment_dim": self.augment.label_dim, "at": at},
            "augment_options",
            network,
        )

    def _check_block(self, name: str, what: str) -> None:
        try:
            resolve_module(self.model.base, name, who=f"[recipe_options] {what}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _level(self, level: Any, what: str) -> Any:
        try:
            return self.objective.check_level(level)
        except ValueError as exc:
            raise ConfigError(f"[recipe_options] {what}: {exc}") from None

    def _probe_width(self, block: str) -> int:
        x = torch.zeros(2, *self.image_shape)
        with torch.no_grad():
            feats = self._features(self.model, x, block, self.feature_level, noise=x)
        return int(feats.shape[-1])

    def _build_moco(self) -> None:
        m = self.moco
        who = "[recipe_options] moco_options"
        m["weight"] = check_positive(m["weight"], "weight", who)
        m["tau"] = check_positive(m["tau"], "tau", who)
        m["dim"] = check_int(m["dim"], "dim", who)
        m["hidden"] = check_int(m["hidden"], "hidden", who)
        m["level"] = self.feature_level if m["level"] is None else self._level(m["level"], who)
        feature = m["feature"]
        if feature == "auto":
            feature = "u" if self._selfcond() is not None else self.bottleneck
        if feature != "u":
            self._check_block(feature, "moco_options feature")
        elif self._selfcond() is None:
            raise ConfigError(f"{who}: feature = 'u' needs self_condition = true")
        m["feature"] = feature
        from manyview_diffusion.augment import EDMAugment

        self.moco_augment = self._build_part(EDMAugment, m["augment"], "moco_options augment")
        width = self._moco_width()
        self.model.heads["moco_proj"] = MLP(width, m["hidden"], m["dim"])
        self.model.heads["moco_pred"] = nn.Sequential(
            nn.Linear(m["dim"], m["hidden"]), nn.SiLU(), nn.Linear(m["hidden"], m["dim"])
        )

    def _moco_width(self) -> int:
        if self.moco["feature"] == "u":
            return int(self._selfcond().mlp[-1].out_features)
        return self._probe_width(self.moco["feature"])

    def _build_align(self, dataset: Any) -> None:
        a = self.align
        who = "[recipe_options] align_options"
        if a["teacher"] is None:
            raise ConfigError(
                f'{who}: give teacher, e.g. {{ name = "frozen", options = {{ run = '
                '"runs/encoder" }} }} (the encoder whose features the network aligns to)'
            )
        spec = option_table(a["teacher"], "align_options teacher")
        if "name" not in spec:
            raise ConfigError(f"{who}: teacher needs a name (manyview list teacher)")
        spec = {"name": spec["name"], "options": option_table(spec.get("options", {}), "options")}
        a["weight"] = check_positive(a["weight"], "weight", who)
        a["hidden"] = check_int(a["hidden"], "hidden", who)
        a["image_size"] = check_int(a["image_size"], "image_size", who, least=0)
        a["block"] = str(a["block"] or self.bottleneck)
        self._check_block(a["block"], "align_options block")
        context = BuildContext(modality=self.modality, modalities=(self.modality,))
        teacher = build_teacher(spec, context)
        self.align_teacher = teacher
        with torch.no_grad():
            x = torch.stack([dataset[i][self.modality] for i in range(min(2, len(dataset)))])
            target = self._align_targets(x)
        width = self._probe_width(a["block"])
        self.model.heads["align_proj"] = MLP(width, a["hidden"], int(target.shape[-1]))

    # ------------------------------------------------------------------ the network
    def _selfcond(self) -> nn.Module | None:
        from manyview_diffusion.selfcond import SelfConditioned

        for module in self.model.network.modules():
            if isinstance(module, SelfConditioned):
                return module
        return None

    def prepare(self, images: Any) -> Tensor:
        """Images ``(N, C, H, W)`` in [0, 1] (or uint8) checked, as x0 in [-1, 1]."""
        if not isinstance(images, Tensor) or images.dim() != 4:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"{WHO}: expects images (N, C, H, W), got {got}")
        if tuple(images.shape[1:]) != self.image_shape:
            c, h, w = self.image_shape
            raise ValueError(
                f"{WHO}: the network takes {c}x{h}x{w} images, got "
                f"{'x'.join(map(str, images.shape[1:]))}; resize them to its size"
            )
        param = next(self.model.parameters())
        if images.dtype == torch.uint8:
            x = images.to(param.device, torch.float32) / 255.0
        elif images.is_floating_point():
            x = images.to(param.device, torch.float32)
        else:
            raise ValueError(f"{WHO}: expects float or uint8 images, got {images.dtype}")
        return x * 2 - 1

    def _null(self, n: int, device: torch.device) -> Tensor:
        null = (
            self.num_classes
            if self.conditional
            else (int(getattr(self.model.base.config, "num_embeds_ada_norm", 0) or 0))
        )
        return torch.full((n,), null, dtype=torch.long, device=device)

    def call(
        self,
        model: DiffusionModel,
        labels: Tensor | None = None,
        aug_labels: Tensor | None = None,
    ) -> Any:
        """``(x_t, timesteps) -> prediction`` of ``model.network`` (the online model or
        ``model.ema``) with the inputs its class needs: class labels (``labels``, or the
        null label), an empty text condition for ``UNet2DConditionModel``."""

        def run(x_t: Tensor, timesteps: Tensor) -> Tensor:
            kwargs: dict[str, Any] = {}
            n = x_t.shape[0]
            if self.network_class == "UNet2DConditionModel":
                dim = model.base.config.cross_attention_dim
                kwargs["encoder_hidden_states"] = x_t.new_zeros(n, 1, dim)
            elif self.network_class == "DiTTransformer2DModel" or self.conditional:
                kwargs["class_labels"] = labels if labels is not None else self._null(n, x_t.device)
            if aug_labels is not None:
                kwargs["aug_labels"] = aug_labels
            if timesteps.dim() == 0:
                timesteps = timesteps.expand(n)
            return model.network(x_t, timesteps, **kwargs).sample

        return run

    def _features(
        self,
        model: DiffusionModel,
        images: Tensor,
        block: str,
        level: Any,
        *,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        pool: str = "auto",
    ) -> Tensor:
        """``block``'s pooled output for ``images`` in [0, 1] noised at ``level``."""
        x0 = self.prepare(images)
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        x_in, t_in = self.objective.inputs_at(x0, level, noise)
        tap = FeatureTap(model.base, block, pool=pool, stop=True, who=WHO)
        return tap(lambda: self.call(model)(x_in, t_in))[block]

    # ------------------------------------------------------------------ protocol
    @property
    def modalities(self) -> tuple[str, ...]:
        return (self.modality,)

    def encode(self, modality: str, inputs: Any) -> Tensor:
        """DDAE features ``(N, C)``: the EMA network's ``feature_block`` output, pooled, on
        the images noised at ``feature_level`` with noise seeded by ``feature_seed``."""
        if modality != self.modality:
            raise ValueError(f"{WHO}: encodes {self.modality!r}, not {modality!r}")
        return self.features(inputs)

    def features(
        self,
        images: Any,
        *,
        block: str | None = None,
        level: Any = None,
        online: bool = False,
    ) -> Tensor:
        """DDAE features of ``images`` (N, C, H, W) in [0, 1] at ``block`` and noise
        ``level`` (defaults: ``feature_block``, ``feature_level``) of the EMA network (or
        the online one), with noise seeded by ``feature_seed``: ``(N, C)``."""
        block = block or self.feature_block
        self._check_block(block, "block")
        level = self.feature_level if level is None else self._level(level, "level")
        model = self.model if online else self.model.ema
        device = next(model.parameters()).device
        g = torch.Generator(device=device).manual_seed(self.feature_seed)
        return self._features(model, images, block, level, generator=g)

    def feature_grid(
        self,
        images: Any,
        blocks: Sequence[str],
        level: Any,
        *,
        online: bool = False,
    ) -> dict[str, Tensor]:
        """DDAE features of several ``blocks`` at one noise ``level`` from one forward pass
        (noise seeded by ``feature_seed``, as :meth:`features`): ``{block: (N, C)}``."""
        for block in blocks:
            self._check_block(block, "block")
        level = self._level(level, "level")
        model = self.model if online else self.model.ema
        x0 = self.prepare(images)
        g = torch.Generator(device=x0.device).manual_seed(self.feature_seed)
        noise = torch.randn(x0.shape, generator=g, device=x0.device)
        x_in, t_in = self.objective.inputs_at(x0, level, noise)
        tap = FeatureTap(model.base, list(blocks), stop=True, who=WHO)
        return tap(lambda: self.call(model)(x_in, t_in))

    def probe_grid(self) -> tuple[list[str], list[Any]]:
        """The (blocks, noise levels) DDAE's probe searches by default: the bottleneck and
        every decoder block (a DiT: every block), at four small noise levels of the
        objective (DDAE's grid is DDPM t ∈ {1, 11, 21} and EDM σ ≈ {0.023, 0.060, 0.140})."""
        base = self.model.base
        if hasattr(base, "up_blocks"):
            blocks = ["mid_block"] * (getattr(base, "mid_block", None) is not None)
            blocks += [f"up_blocks.{i}" for i in range(len(base.up_blocks))]
        else:
            blocks = [f"transformer_blocks.{i}" for i in range(len(base.transformer_blocks))]
        return blocks, list(PROBE_LEVELS[self.objective_name])

    def block_names(self) -> list[str]:
        """The blocks :meth:`features` can read: the top-level blocks of the network."""
        from manyview_diffusion.taps import block_names

        return block_names(self.model.base)

    def after_step(self, step: int) -> None:
        self.teacher.update(self._online(), step)

    def _online(self) -> nn.Module:
        """The model without its EMA copy: what the teacher averages."""
        return _Online(self.model)

    def trainable(self) -> list[nn.Parameter]:
        return [p for n, p in self.model.named_parameters() if p.requires_grad]

    # ------------------------------------------------------------------ the step
    def step(self, batch: Mapping[str, Any], generator: torch.Generator) -> StepOutput:
        x0 = self.prepare(batch[self.modality])
        n = x0.shape[0]
        labels = None
        if self.conditional:
            labels = torch.as_tensor(batch["label"], device=x0.device).long()
            if self.label_dropout > 0:
                drop = torch.rand(n, generator=generator, device=x0.device) < self.label_dropout
                labels = torch.where(drop, self._null(n, x0.device), labels)
        aug_labels = None
        clean = x0
        if self.augment is not None:
            x0, aug_labels = self.augment(x0, generator=generator)
        call = self.call(self.model, labels, aug_labels)
        components: dict[str, Tensor | float] = {}
        if self.align is not None:
            block = self.align["block"]
            tap = FeatureTap(self.model.base, block, pool="none", who=WHO)
            result: dict[str, Tensor] = {}
            h = tap(
                lambda: result.setdefault("loss", self.objective(call, x0, generator=generator))
            )[block]
            diffusion = result["loss"]
            target = self._align_targets((clean + 1) / 2)
            align = self._align_loss(h, target)
            components["align"] = align.detach()
        else:
            diffusion = self.objective(call, x0, generator=generator)
        components[self.objective_name] = diffusion.detach()
        total = diffusion
        if self.align is not None:
            total = total + self.align["weight"] * align
        if self.moco is not None:
            moco = self._moco_loss(clean, generator)
            components["moco"] = moco.detach()
            total = total + self.moco["weight"] * moco
        return StepOutput(total, components)

    # ------------------------------------------------------------------ REPA
    def _align_targets(self, images: Tensor) -> Tensor:
        """The frozen encoder's features of clean images in [0, 1]: ``(N, D)`` or tokens
        ``(N, T, D)``."""
        size = self.align["image_size"]
        if size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
        with torch.no_grad():
            y = self.align_teacher({self.modality: images})
        if not isinstance(y, Tensor) or y.dim() not in (2, 3):
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ConfigError(
                f"[recipe_options] align_options teacher: gives {got}, not features (N, D) "
                "or tokens (N, T, D)"
            )
        return y.float()

    def _align_loss(self, h: Tensor, y: Tensor) -> Tensor:
        """REPA's loss: the mean over samples (and tokens) of −cos(P(h), y). ``h`` is the
        block's raw output; with token targets ``(N, T, D)`` a feature map is pooled to T
        tokens (a square grid) and each token projected; with ``(N, D)`` targets ``h`` is
        pooled first."""
        proj = self.model.heads["align_proj"]
        if y.dim() == 2:
            p = proj(pool_features(h, "auto", who=WHO))
        else:
            tokens = y.shape[1]
            if h.dim() == 4:
                side = math.isqrt(tokens)
                if side * side != tokens:
                    raise ValueError(f"{WHO}: {tokens} target tokens are not a square grid")
                h = F.adaptive_avg_pool2d(h, side).flatten(2).transpose(1, 2)
            if h.shape[1] != tokens:
                raise ValueError(
                    f"{WHO}: the block gives {h.shape[1]} tokens, the teacher {tokens}; align "
                    "a block of the same resolution or resize the teacher's images"
                )
            p = proj(h)
        return -F.cosine_similarity(p.float(), y, dim=-1).mean()

    # ------------------------------------------------------------------ MoCo v3
    def _moco_views(self, clean: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two views of the clean batch, each drawn by ``moco_options.augment``."""
        a, _ = self.moco_augment(clean, generator=generator)
        b, _ = self.moco_augment(clean, generator=generator)
        return a, b

    def _moco_embed(self, model: DiffusionModel, x0: Tensor, generator: torch.Generator) -> Tensor:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        x_in, t_in = self.objective.inputs_at(x0, self.moco["level"], noise)
        feature = self.moco["feature"]
        if feature == "u":  # u = MLP(Pool(h_source)), before any gate
            sc = self._selfcond_of(model)
            tap = FeatureTap(model.base, sc.source, stop=True, who=WHO)
            h = tap(lambda: self.call(model)(x_in, t_in))[sc.source]
            f = sc.mlp(h.detach() if sc.stop_grad else h)
        else:
            tap = FeatureTap(model.base, feature, stop=True, who=WHO)
            f = tap(lambda: self.call(model)(x_in, t_in))[feature]
        return model.heads["moco_proj"](f.float())

    def _selfcond_of(self, model: DiffusionModel) -> nn.Module:
        from manyview_diffusion.selfcond import SelfConditioned

        return next(m for m in model.network.modules() if isinstance(m, SelfConditioned))

    def _moco_loss(self, clean: Tensor, generator: torch.Generator) -> Tensor:
        """½[CE(q̂₁ k̂₂ᵀ/τ) + CE(q̂₂ k̂₁ᵀ/τ)] with the diagonal as positives (MoCo v3; its
        code also scales each term by 2τ, which ``weight`` can absorb)."""
        v1, v2 = self._moco_views(clean, generator)
        q1 = self.model.heads["moco_pred"](self._moco_embed(self.model, v1, generator))
        q2 = self.model.heads["moco_pred"](self._moco_embed(self.model, v2, generator))
        with torch.no_grad():
            k1 = self._moco_embed(self.model.ema, v1, generator)
            k2 = self._moco_embed(self.model.ema, v2, generator)
        tau = self.moco["tau"]
        target = torch.arange(clean.shape[0], device=clean.device)

        def ctr(q: Tensor, k: Tensor) -> Tensor:
            logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).T / tau
            return F.cross_entropy(logits, target)

        return 0.5 * (ctr(q1, k2) + ctr(q2, k1))

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        steps: int | None = None,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        guidance: float = 1.0,
    ) -> Tensor:
        """``n`` images ``(n, C, H, W)`` in [0, 1] from the EMA network with the
        objective's sampler (DDIM, EDM Heun, flow Euler) in ``steps`` steps (default
        ``sample_steps``); ``labels`` (n,) for a class-conditional network (default: the
        null label), ``guidance`` > 1 for classifier-free guidance."""
        from manyview_diffusion.sampling import sample

        n = check_int(n, "n", WHO)
        steps = self.sample_steps if steps is None else check_int(steps, "steps", WHO)
        model = self.model.ema
        device = next(model.parameters()).device
        if labels is not None:
            if not self.conditional:
                raise ValueError(f"{WHO}: labels need a class_conditional network")
            labels = torch.as_tensor(labels, device=device).long()
            if labels.shape != (n,) or labels.min() < 0 or labels.max() >= self.num_classes:
                raise ValueError(
                    f"{WHO}: labels must be (n,) = ({n},) classes in [0, {self.num_classes}), "
                    f"got shape {tuple(labels.shape)}"
                )
        guidance = float(guidance)
        cond = self.call(model, labels)
        if guidance != 1.0 and labels is not None:
            uncond = self.call(model, None)

            def network(x: Tensor, t: Tensor) -> Tensor:
                c, u = cond(x, t), uncond(x, t)
                return u + guidance * (c - u)
        else:
            network = cond
        x = sample(
            self.objective, network, (n, *self.image_shape), steps=steps, generator=generator
        )
        return ((x.float() + 1) / 2).clamp(0, 1)


class _Online(nn.Module):
    """A view of a :class:`DiffusionModel` without its ``ema`` (its state_dict is the
    online weights the teacher averages)."""

    def __init__(self, model: DiffusionModel) -> None:
        super().__init__()
        self.network = model.network
        self.heads = model.heads
