"""The ``self_e`` recipe: a text-to-image denoiser trained from scratch by Self-E, or by flow
matching on the same code (Yu et al., "Self-Evaluation Unlocks Any-Step Text-to-Image
Generation", arXiv 2512.22374).

What it trains (:class:`SelfEModel`): a dual-time denoiser ``model(x_t, t, s, cond) -> V``
(:mod:`manyview_selfeval.denoisers`: a diffusers UNet, an MLP on flattened images, or a
Flux transformer) conditioned on a registered text encoder's features of the prompt (by
default manyview-text's ``open_clip_text``, tiny and randomly initialised, frozen or
trained). A step is :class:`~manyview_selfeval.objective.SelfELoss` on the batch's images
in [−1, 1] and its prompts, each dropped to the null prompt ``""`` with probability
``prompt_dropout`` (classifier-free guidance needs the unconditional model): Self-E makes
three network passes (x̂0 with gradients, then the conditional evaluator pass on the EMA
and the unconditional one on the online model), flow matching (λ = 0, s = t) one.

The EMA is the core ``ema`` teacher (the ``[teacher]`` table; ``ema`` with momentum 0.999
when absent) of the denoiser, and of the text encoder when it is trained. Its averaged copy
is also part of the recipe's ``model`` (as ``model.ema``), so ``model.safetensors`` holds
the weights the benchmarks sample from and ``run.baseline()`` resets both.

The share of training done, ``progress = steps / [run] steps`` (the steps counted in the
recipe's own state, so a resumed run continues the same anneal), drives the loss's τ
anneal and switches the auxiliary fake-score term on after ``aux_start``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from manyview.config import ConfigError
from manyview.context import build
from manyview.options import check_choice, check_fraction, check_int, check_non_negative
from manyview.recipes import (
    Recipe,
    StepOutput,
    build_teacher,
    first_sample,
    option_switch,
    option_table,
    recipe_options,
)
from manyview_selfeval.denoisers import FluxDenoiser, MLPDenoiser, UNetDenoiser
from manyview_selfeval.objective import MODES, SelfELoss
from manyview_selfeval.sampling import GUIDANCES, S_POLICIES, SAMPLERS

__all__ = ["BACKBONES", "Conditioned", "FlatDenoiser", "SelfEModel", "SelfERecipe"]

WHO = "self_e recipe"
NULL_PROMPT = ""
"""The null prompt: the condition of the unconditional model."""
FAKE_PREFIX = "fake image"
"""The auxiliary fake-score term's condition is this prefix, a space, then the prompt."""
BACKBONES = ("unet", "mlp", "flux")
"""The denoisers ``backbone`` names."""

TINY_UNET: dict[str, Any] = {
    "network": "UNet2DModel",
    "config": {
        "block_out_channels": [16, 32],
        "down_block_types": ["DownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "UpBlock2D"],
        "norm_num_groups": 8,
    },
}
"""The default ``backbone_options`` of ``"unet"``: a UNet2DModel for small images, the
prompt's features added to its time embedding."""
BACKBONE_DEFAULTS: dict[str, dict[str, Any]] = {
    "unet": TINY_UNET,
    "mlp": {"hidden": 256, "layers": 3},
    "flux": {"patch": 2},
}
TEXT_DEFAULTS: dict[str, Any] = {
    "width": 32,
    "layers": 1,
    "heads": 2,
    "context_length": 8,
    "embed_dim": 32,
}
"""The default ``text_encoder_options`` of ``open_clip_text``: a one-layer, 32-wide tower
with an 8-token context (``"fake image the number seven"`` is 7 tokens with start and end)."""

DEFAULTS: dict[str, Any] = {
    "mode": "self_e",
    "image": "image",
    "text": "text",
    "backbone": "unet",
    "backbone_options": {},
    "text_encoder": "open_clip_text",
    "text_encoder_options": {},
    "train_text_encoder": False,
    "prompt_dropout": 0.1,
    "loss_options": {},
    "aux_start": None,
    "sampler": "ddim_sde",
    "eta": 1.0,
    "s_policy": "auto",
    "guidance": "ep_cfg",
    "scale": 5.0,
    "shift": 0.0,
    "sample_steps": 50,
}


class FlatDenoiser(nn.Module):
    """A vector denoiser (:class:`~manyview_selfeval.denoisers.MLPDenoiser`) on images:
    ``x_t`` (N, C, H, W) is flattened to (N, C·H·W) and the velocity reshaped back."""

    def __init__(self, denoiser: nn.Module, shape: Sequence[int]) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.shape = tuple(int(d) for d in shape)

    def forward(self, x_t: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
        return self.denoiser(x_t.flatten(1), t, s, cond).view(x_t.shape)


class Conditioned(nn.Module):
    """A denoiser and (optionally) its text encoder as one denoiser of token ids:
    ``forward(x_t, t, s, cond)`` with ``cond`` token ids (N, L) (integers, encoded by
    ``text``) or features (N, D) (floats, passed through) calls ``denoiser(x_t, t, s,
    features)``."""

    def __init__(self, denoiser: nn.Module, text: nn.Module | None = None) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.text = text

    def condition(self, cond: Tensor) -> Tensor:
        """The denoiser's condition (N, D): ``text(cond)`` for token ids, else ``cond``."""
        if cond.is_floating_point():
            return cond
        if self.text is None:
            raise ValueError(f"{WHO}: token ids need a text encoder; pass features (N, D)")
        return self.text(cond)

    def forward(self, x_t: Tensor, t: Tensor, s: Tensor, cond: Tensor) -> Tensor:
        return self.denoiser(x_t, t, s, self.condition(cond))


class SelfEModel(Conditioned):
    """What the recipe trains: ``denoiser`` and ``text`` (the text encoder, frozen unless
    ``train_text_encoder``); the recipe adds ``ema``, the teacher's averaged copy of the
    denoiser (and of the text encoder when it is trained). Called, it is the online model."""

    ema: nn.Module

    def averaged(self) -> Conditioned:
        """The EMA denoiser with the EMA text encoder (the frozen one when not trained)."""
        ema = self.ema
        return Conditioned(ema.denoiser, ema.text if ema.text is not None else self.text)


class SelfERecipe(Recipe):
    """Self-E (or flow matching) text-to-image training of a dual-time denoiser (module
    docstring). ``[recipe_options]``:

    - ``mode`` (``"self_e"``; ``"flow_matching"``: the same recipe with λ = 0, s = t).
    - ``image`` (``"image"``) and ``text`` (``"text"``): the dataset's entries, images
      (C, H, W) in [0, 1] (mapped to [−1, 1]) and their prompts (strings).
    - ``backbone`` (``"unet"``, ``"mlp"``, ``"flux"``) and ``backbone_options``: the
      arguments of :class:`~manyview_selfeval.denoisers.UNetDenoiser` (default a tiny
      ``UNet2DModel``), :class:`~manyview_selfeval.denoisers.MLPDenoiser` (on the flattened
      image) or :class:`~manyview_selfeval.denoisers.FluxDenoiser`; the image's channels
      and size and the condition's width are filled in.
    - ``text_encoder`` (``"open_clip_text"``) and ``text_encoder_options`` (default a
      one-layer, 32-wide tower with an 8-token context): a registered text encoder with
      ``tokenize(texts) -> (N, L)`` ids and ``output_dim``; ``train_text_encoder`` (false:
      frozen at its initial weights, which the run's ``model.safetensors`` keeps).
    - ``prompt_dropout`` (0.1): the share of prompts replaced by the null prompt ``""``.
    - ``loss_options``: :class:`~manyview_selfeval.objective.SelfELoss` arguments (not
      ``mode``, ``aux``, ``aux_start``).
    - ``aux_start`` (off): the share of the run's steps after which the auxiliary fake-score
      term, conditioned on ``"fake image " + prompt``, is on (Self-E only).
    - Sampling defaults of :meth:`sample`: ``sampler`` (``"ddim_sde"``), ``eta`` (1),
      ``s_policy`` (``"auto"``: ``"next"`` for Self-E, ``"same"`` for flow matching, whose
      network never saw s < t), ``guidance`` (``"ep_cfg"``), ``scale`` (5), ``shift`` (0),
      ``sample_steps`` (50).

    The ``[teacher]`` table must build an averaging teacher with a ``module`` (``ema``).
    ``encode("text", prompts)`` gives the (EMA) text encoder's features (N, D), the
    denoiser's condition.
    """

    uses_teacher = True
    example_config: ClassVar[str | None] = """
[run]
recipe = "self_e"
steps = 4
batch_size = 8
[data]
name = "digits3"
options = { dialects = ["en-us"], variants = ["m1", "f1"], test_variants = 1, renditions = 1, max_images = 60, clip_seconds = 0.25, sample_rate = 4000 }
[recipe_options]
backbone = "mlp"
backbone_options = { hidden = 32, layers = 2, time_dim = 16 }
text_encoder_options = { width = 16, layers = 1, heads = 2, context_length = 8, embed_dim = 16 }
train_text_encoder = true
aux_start = 0.5
sample_steps = 2
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
            raise ConfigError(str(exc).strip().splitlines()[0]) from None

    # ------------------------------------------------------------------ building
    def _setup(self, config: Mapping[str, Any], dataset: Any) -> None:
        if config.get("losses"):
            raise ConfigError(
                "[[losses]]: the self_e recipe's objective is [recipe_options] mode and "
                "loss_options; remove the [[losses]] tables"
            )
        if config.get("modalities"):
            raise ConfigError(
                "[modalities]: the self_e recipe reads the dataset's images and prompts "
                "directly; remove the [modalities] tables (set [recipe_options] image, text)"
            )
        opts = recipe_options(config, DEFAULTS, "self_e")
        self.mode = check_choice(opts["mode"], MODES, "mode", "[recipe_options]")
        self.image_key, self.text_key = str(opts["image"]), str(opts["text"])
        sample = first_sample(dataset, (self.image_key, self.text_key))
        image = sample[self.image_key]
        if not isinstance(image, Tensor) or image.dim() != 3 or not image.is_floating_point():
            got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise ConfigError(
                f"{WHO}: the dataset's {self.image_key!r} samples must be float images "
                f"(C, H, W) in [0, 1], got {got}"
            )
        if not isinstance(sample[self.text_key], str):
            raise ConfigError(
                f"{WHO}: the dataset's {self.text_key!r} samples must be prompts (strings), "
                f"got {type(sample[self.text_key]).__name__}"
            )
        self.image_shape = tuple(int(d) for d in image.shape)
        self.class_prompts = self._class_prompts(dataset)
        self.num_classes: int | None = len(self.class_prompts) or None

        self.train_text = option_switch(opts["train_text_encoder"], "train_text_encoder")
        text = self._text_encoder(opts)
        denoiser = self._denoiser(opts, int(text.output_dim))
        self.model = SelfEModel(denoiser, text)
        if not self.train_text:
            text.requires_grad_(False)

        self.prompt_dropout = check_fraction(opts["prompt_dropout"], "prompt_dropout", WHO)
        self.loss = self._loss(opts)
        self._check_training_prompts(dataset)
        self._sampling_defaults(opts)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.total_steps = check_int(config["run"]["steps"], "[run] steps", WHO)

        spec = config.get("teacher") or {"name": "ema", "options": {"momentum": 0.999}}
        context = {
            "student": self._online(),
            "modality": self.image_key,
            "modalities": (self.image_key, self.text_key),
            "steps": config["run"]["steps"],
            "dataset_size": len(dataset),
        }
        teacher = build_teacher(spec, context)
        module = getattr(teacher, "module", None)
        if not isinstance(module, Conditioned):
            raise ConfigError(
                f"[teacher] ({spec['name']}): the self_e recipe needs an averaging teacher of "
                'its denoiser (name = "ema"), one with a `module` copy of the model'
            )
        self.teacher = teacher
        self.model.ema = module  # shared: the averaged weights are in model.safetensors

    def _class_prompts(self, dataset: Any) -> list[str]:
        """One prompt per class, what a label asks :meth:`sample` for: each class's first
        text form (``class_texts``, digits3's ``"seven"``), else its ``class_names``."""
        texts = getattr(dataset, "class_texts", None)
        if texts:
            return [str(forms[0]) for forms in texts]
        names = getattr(dataset, "class_names", None)
        return [str(n) for n in names] if names else []

    def _text_encoder(self, opts: Mapping[str, Any]) -> nn.Module:
        name = str(opts["text_encoder"])
        given = option_table(opts["text_encoder_options"], "text_encoder_options")
        options = {**TEXT_DEFAULTS, **given} if name == "open_clip_text" else given
        try:
            encoder = build("encoder", name, options)
        except (LookupError, TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"[recipe_options] text_encoder {name!r}: {first}") from None
        if not callable(getattr(encoder, "tokenize", None)) or not isinstance(
            getattr(encoder, "output_dim", None), int
        ):
            raise ConfigError(
                f"[recipe_options] text_encoder {name!r} needs tokenize(texts) -> (N, L) ids "
                "and output_dim (open_clip_text has both)"
            )
        return encoder

    def _denoiser(self, opts: Mapping[str, Any], cond_dim: int) -> nn.Module:
        backbone = check_choice(opts["backbone"], BACKBONES, "backbone", "[recipe_options]")
        given = option_table(opts["backbone_options"], "backbone_options")
        if "cond_dim" in given:
            raise ConfigError(
                "[recipe_options] backbone_options: cond_dim is the text encoder's output_dim; "
                "remove it"
            )
        options = {**BACKBONE_DEFAULTS[backbone], **given}
        c, h, w = self.image_shape
        try:
            if backbone == "unet":
                if "pretrained" not in options:
                    cfg = {"in_channels": c, "out_channels": c, "sample_size": h}
                    options["config"] = {
                        **cfg,
                        **option_table(options.get("config") or {}, "config"),
                    }
                return UNetDenoiser(cond_dim=cond_dim, **options)
            if backbone == "mlp":
                return FlatDenoiser(MLPDenoiser(c * h * w, cond_dim, **options), self.image_shape)
            if "pretrained" not in options:
                p = int(options.get("patch", 2))
                cfg = {"in_channels": c * p * p, "out_channels": c * p * p}
                options["config"] = {**cfg, **option_table(options.get("config") or {}, "config")}
            return FluxDenoiser(cond_dim=cond_dim, **options)
        except TypeError as exc:
            raise ConfigError(f"[recipe_options] backbone_options ({backbone}): {exc}") from None
        except ValueError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"[recipe_options] backbone_options ({backbone}): {first}") from None

    def _loss(self, opts: Mapping[str, Any]) -> SelfELoss:
        given = option_table(opts["loss_options"], "loss_options")
        for key, where in (("mode", "mode"), ("aux", "aux_start"), ("aux_start", "aux_start")):
            if key in given:
                raise ConfigError(
                    f"[recipe_options] loss_options: {key} is set by [recipe_options] {where}; "
                    "remove it"
                )
        aux_start = opts["aux_start"]
        aux = aux_start is not None and aux_start is not False
        if aux:
            if self.mode != "self_e":
                raise ConfigError(
                    "[recipe_options] aux_start: the auxiliary fake-score term is Self-E's; "
                    "remove it for mode = 'flow_matching'"
                )
            given.update(aux=True, aux_start=check_fraction(aux_start, "aux_start", WHO))
        try:
            return SelfELoss(self.mode, **given)
        except TypeError as exc:
            raise ConfigError(f"[recipe_options] loss_options: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"[recipe_options] loss_options: {exc}") from None

    def _check_training_prompts(self, dataset: Any) -> None:
        """Every prompt form of the dataset (``class_texts``, else the first sample's) fits
        the text encoder's context, with the fake prefix when the aux term is on."""
        forms = getattr(dataset, "class_texts", None)
        prompts = [p for group in forms for p in group] if forms else [dataset[0][self.text_key]]
        prompts = [*prompts, *self.class_prompts]
        if self.loss.aux:
            prompts += [self.fake_prompt(p) for p in prompts]
        try:
            self.check_prompts(prompts)
        except ValueError as exc:
            raise ConfigError(
                f"{exc} (the dataset's prompts; raise text_encoder_options context_length)"
            ) from None

    def _sampling_defaults(self, opts: Mapping[str, Any]) -> None:
        who = "[recipe_options]"
        self.sampler = check_choice(opts["sampler"], SAMPLERS, "sampler", who)
        policy = opts["s_policy"]
        if policy == "auto":
            policy = "next" if self.mode == "self_e" else "same"
        self.s_policy = check_choice(policy, S_POLICIES, "s_policy", who)
        self.guidance = check_choice(opts["guidance"], GUIDANCES, "guidance", who)
        self.eta = check_non_negative(opts["eta"], "eta", who)
        scale = check_non_negative(opts["scale"], "scale", who)
        if scale < 1:
            raise ConfigError(f"{who} scale (the guidance weight) must be >= 1, got {scale:g}")
        self.scale = scale
        shift = opts["shift"]
        if (
            isinstance(shift, bool)
            or not isinstance(shift, int | float)
            or not math.isfinite(shift)
        ):
            raise ConfigError(f"{who} shift must be a finite number, got {shift!r}")
        self.shift = float(shift)
        self.sample_steps = check_int(opts["sample_steps"], "sample_steps", who)

    def _online(self) -> Conditioned:
        """What the teacher averages: the denoiser, and the text encoder when trained."""
        return Conditioned(self.model.denoiser, self.model.text if self.train_text else None)

    # ------------------------------------------------------------------ prompts
    @staticmethod
    def fake_prompt(prompt: str) -> str:
        """The auxiliary term's condition of ``prompt``: ``"fake image " + prompt``."""
        return f"{FAKE_PREFIX} {prompt}" if prompt else FAKE_PREFIX

    def check_prompts(self, prompts: Any) -> list[str]:
        """``prompts`` as a list of strings the text encoder takes whole; a one-line
        ``ValueError`` for an empty list, a non-string, or a prompt longer than the text
        encoder's context (it would be truncated)."""
        if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
            raise ValueError(f"{WHO}: prompts must be a non-empty list of strings")
        bad = [p for p in prompts if not isinstance(p, str)]
        if bad:
            raise ValueError(f"{WHO}: prompts must be strings, got {type(bad[0]).__name__}")
        text = self.model.text
        tokenizer, context = getattr(text, "tokenizer", None), getattr(text, "context_length", None)
        if callable(getattr(tokenizer, "encode", None)) and isinstance(context, int):
            for p in prompts:
                n = len(tokenizer.encode(p)) + 2  # with the start and end tokens
                if n > context:
                    raise ValueError(
                        f"{WHO}: the prompt {p!r} has {n} tokens; the text encoder takes at "
                        f"most {context} (its context_length): shorten it"
                    )
        return list(prompts)

    def tokens(self, prompts: Sequence[str], device: torch.device) -> Tensor:
        """Token ids (N, L) of ``prompts`` on ``device``."""
        return self.model.text.tokenize(list(prompts)).to(device)

    def drop_prompts(self, prompts: Sequence[str], generator: torch.Generator) -> list[str]:
        """``prompts`` with each replaced by the null prompt ``""`` with probability
        ``prompt_dropout`` (one uniform draw per prompt from ``generator``)."""
        if self.prompt_dropout == 0:
            return list(prompts)
        coin = torch.rand(len(prompts), generator=generator, device=generator.device)
        drop = (coin < self.prompt_dropout).tolist()
        return [NULL_PROMPT if d else p for p, d in zip(prompts, drop, strict=True)]

    # ------------------------------------------------------------------ the step
    @property
    def progress(self) -> float:
        """The share of the run's steps done, in [0, 1]."""
        return min(int(self.steps_done) / self.total_steps, 1.0)

    def prepare(self, images: Any) -> Tensor:
        """Images (N, C, H, W) in [0, 1] (float or uint8) as the denoiser's x0 in [−1, 1]."""
        if not isinstance(images, Tensor) or images.dim() != 4:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"{WHO}: expects images (N, C, H, W), got {got}")
        if tuple(images.shape[1:]) != self.image_shape:
            want = "x".join(map(str, self.image_shape))
            raise ValueError(
                f"{WHO}: the denoiser takes {want} images, got "
                f"{'x'.join(map(str, images.shape[1:]))}"
            )
        param = next(self.model.denoiser.parameters())
        if images.dtype == torch.uint8:
            x = images.to(param.device, torch.float32) / 255.0
        elif images.is_floating_point():
            x = images.to(param.device, torch.float32)
        else:
            raise ValueError(f"{WHO}: expects float or uint8 images, got {images.dtype}")
        return x * 2 - 1

    def step(self, batch: Mapping[str, Any], generator: torch.Generator) -> StepOutput:
        x0 = self.prepare(batch[self.image_key])
        prompts = batch[self.text_key]
        if isinstance(prompts, str) or len(prompts) != x0.shape[0]:
            raise ValueError(f"{WHO}: the batch needs one prompt per image")
        prompts = self.drop_prompts(prompts, generator)
        device = x0.device
        cond = self.tokens(prompts, device)
        null = self.tokens([NULL_PROMPT], device)
        progress = self.progress
        fake = None
        if self.loss.aux_on(progress):
            fake = self.tokens([self.fake_prompt(p) for p in prompts], device)
        ema = self.model.averaged() if self.mode == "self_e" else None
        total, components = self.loss(
            self.model,
            x0,
            cond,
            null,
            generator=generator,
            progress=progress,
            ema_model=ema,
            fake_cond=fake,
        )
        return StepOutput(total, dict(components))

    def after_step(self, step: int) -> None:
        self.teacher.update(self._online(), step)
        self.steps_done.fill_(step + 1)

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ embeddings
    @property
    def modalities(self) -> tuple[str, ...]:
        return (self.text_key,)

    def encode(self, modality: str, inputs: Any) -> Tensor:
        """The (EMA) text encoder's features (N, D) of prompts: the denoiser's condition."""
        if modality != self.text_key:
            raise ValueError(f"{WHO}: encodes {self.text_key!r} (prompts), not {modality!r}")
        prompts = self.check_prompts(list(inputs) if not isinstance(inputs, str) else inputs)
        model = self.model.averaged()
        device = next(model.denoiser.parameters()).device
        return model.condition(self.tokens(prompts, device))

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        steps: int | None = None,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        prompts: Sequence[str] | None = None,
        sampler: str | None = None,
        eta: float | None = None,
        s_policy: str | None = None,
        guidance: str | None = None,
        scale: float | None = None,
        shift: float | None = None,
    ) -> Tensor:
        """``n`` images (n, C, H, W) in [0, 1] from the EMA model in ``steps`` steps
        (default ``sample_steps``), by :func:`manyview_selfeval.sampling.sample` with the
        recipe's sampling defaults (each overridable here).

        The condition: ``prompts`` (n strings), or ``labels`` (n,) classes in
        [0, ``num_classes``) (each class's prompt, :attr:`class_prompts`), or neither:
        classes drawn uniformly from ``generator``."""
        from manyview_selfeval.sampling import sample

        n = check_int(n, "n", WHO)
        steps = self.sample_steps if steps is None else check_int(steps, "steps", WHO)
        if prompts is not None and labels is not None:
            raise ValueError(f"{WHO}: give prompts or labels, not both")
        if prompts is None:
            if not self.num_classes:
                raise ValueError(f"{WHO}: the dataset names no classes; give prompts")
            if labels is None:
                labels = torch.randint(self.num_classes, (n,), generator=generator)
            labels = torch.as_tensor(labels).long().cpu()
            if labels.shape != (n,) or labels.min() < 0 or labels.max() >= self.num_classes:
                raise ValueError(
                    f"{WHO}: labels must be (n,) = ({n},) classes in [0, {self.num_classes}), "
                    f"got shape {tuple(labels.shape)}"
                )
            prompts = [self.class_prompts[c] for c in labels.tolist()]
        prompts = self.check_prompts(prompts)
        if len(prompts) != n:
            raise ValueError(f"{WHO}: give n = {n} prompts, got {len(prompts)}")
        model = self.model.averaged()
        device = next(model.denoiser.parameters()).device
        cond = model.condition(self.tokens(prompts, device))
        null = model.condition(self.tokens([NULL_PROMPT], device))
        x = sample(
            model,
            (n, *self.image_shape),
            cond,
            null,
            steps=steps,
            sampler=self.sampler if sampler is None else sampler,
            eta=self.eta if eta is None else eta,
            s_policy=self.s_policy if s_policy is None else s_policy,
            guidance=self.guidance if guidance is None else guidance,
            scale=self.scale if scale is None else scale,
            shift=self.shift if shift is None else shift,
            generator=generator,
            clip=1.0,
            device=device,
        )
        return ((x.float() + 1) / 2).clamp(0, 1)
