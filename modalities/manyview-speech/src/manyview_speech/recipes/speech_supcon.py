"""The ``speech_supcon`` recipe: speech classification (word, speaker, dialect or region
identification) with supervised contrastive objectives, as pre-training or beside
cross-entropy (La Quatra et al., "Speech Analysis of Language Varieties in Italy", 2024)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.config import ConfigError
from manyview.context import BuildContext
from manyview.recipes import (
    EmbedRecipe,
    StepOutput,
    WeightedLosses,
    batch_inputs,
    build_encoder,
    build_views,
    recipe_options,
)
from manyview.recipes.parts import build_projector, first_sample

OPTIONS = {
    "objective": "joint",
    "ce_weight": 1.0,
    "label_smoothing": 0.0,
    "num_classes": None,
    "init_from": None,
    "freeze_encoder": False,
    "view_set": None,
    "view_set_options": {},
}
"""``[recipe_options]`` keys and their defaults."""


def count_classes(dataset: Any) -> int:
    """The number of classes: ``dataset.num_classes``, else the largest label + 1."""
    found = getattr(dataset, "num_classes", None)
    if isinstance(found, int) and found > 0:
        return found
    labels = getattr(dataset, "labels", None)
    if isinstance(labels, Tensor) and labels.numel():
        return int(labels.max()) + 1
    return max(int(dataset[i]["label"]) for i in range(len(dataset))) + 1


def model_weights(path: str | Path) -> dict[str, Tensor]:
    """Weights from ``model.safetensors``, a checkpoint folder or a run folder."""
    from safetensors.torch import load_file

    path = Path(path)
    for candidate in (
        path,
        path / "model.safetensors",
        path / "checkpoints/last/model.safetensors",
    ):
        if candidate.is_file():
            return load_file(str(candidate))
    raise ConfigError(
        f"[recipe_options] init_from: no model.safetensors at {path} (give the file, a "
        "checkpoint folder or a run folder)"
    )


class SpeechClassificationRecipe(EmbedRecipe):
    """Supervised-contrastive speech classification on one audio modality.

    The encoder sees ``num_views`` views of each clip. Its features ``h`` (N, M, F) go to a
    projector, whose outputs ``z`` (N, M, D) go to the ``[[losses]]`` with the batch's labels
    (``supcon``; any registered multi-view loss works), and to a linear classifier trained
    with cross-entropy on every view. ``[recipe_options]``:

    - ``objective = "joint"`` (default): CE (times ``ce_weight``) plus the weighted
      ``[[losses]]``: the contrastive loss as an auxiliary objective while fine-tuning. A
      loss weight of 0 gives plain CE.
    - ``objective = "contrastive"``: only the ``[[losses]]`` train the encoder (pre-training);
      the classifier is an online linear probe on detached features, so its accuracy is
      logged without shaping the encoder. Continue with ``objective = "joint"`` and
      ``init_from`` = the pre-training run.
    - ``ce_weight``, ``label_smoothing``: the CE term.
    - ``num_classes``: default ``dataset.num_classes`` or the largest label + 1.
    - ``init_from``: a ``model.safetensors``, checkpoint folder or run folder to start from
      (tensors whose names and shapes match are loaded; a classifier for another number of
      classes is left fresh).
    - ``freeze_encoder``: train only the projector and classifier (a linear probe); the
      encoder stays in eval mode.
    - ``view_set`` (``"two_view"``, ``"multi_view"``, ``"multi_crop"``) with
      ``view_set_options``: use :func:`manyview_speech.views.view_set` instead of the
      modality's ``views`` and ``num_views``.

    The embeddings GradCache caches are the encoder's features ``h``; the projector, the
    losses and the classifier are the objective. Logged components: each loss, ``ce`` and
    ``accuracy`` (of the batch's views).
    """

    example_config = """
[run]
recipe = "speech_supcon"
steps = 4
batch_size = 6
[data]
name = "synthetic"
options = { modalities = { audio = [1600] }, num_samples = 24, num_classes = 3 }
[modalities.audio]
encoder = "logmel_cnn"
encoder_options = { n_mels = 16, channels = [8, 8], output_dim = 8 }
num_views = 2
projector_dim = 8
views = [{ name = "audio_gain", options = { min_db = -3, max_db = 3 } }]
[[losses]]
name = "supcon"
"""

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        super().__init__()
        options = recipe_options(config, OPTIONS, "speech_supcon")
        if options["objective"] not in ("joint", "contrastive"):
            raise ConfigError(
                f"[recipe_options] objective must be 'joint' or 'contrastive', got "
                f"{options['objective']!r}"
            )
        modalities = config["modalities"]
        if len(modalities) != 1:
            raise ConfigError(
                f"speech_supcon recipe: configure one audio modality, got {sorted(modalities)}"
            )
        ((name, modality),) = modalities.items()
        sample = first_sample(dataset, (name,), label_for="speech_supcon recipe")
        encoder = build_encoder(name, modality, dataset)
        dim = encoder.output_dim
        head = build_projector(modality, dim)
        num_classes = int(options["num_classes"] or count_classes(dataset))
        if num_classes < 2:
            raise ConfigError(f"speech_supcon recipe: need at least 2 classes, got {num_classes}")
        self.model = nn.ModuleDict(
            {"encoder": encoder, "projector": head, "classifier": nn.Linear(dim, num_classes)}
        )
        if options["view_set"]:
            from manyview_speech.views import view_set

            try:
                self.views = view_set(options["view_set"], **dict(options["view_set_options"]))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"[recipe_options] view_set: {exc}") from None
            self.num_views = len(self.views)
            self.uses_view_set = True
        else:
            self.uses_view_set = False
            self.views = build_views(name, modality)
            self.num_views = modality["num_views"]
        self.modality, self.num_classes = name, num_classes
        self.objective_kind = options["objective"]
        self.ce_weight = float(options["ce_weight"])
        self.label_smoothing = float(options["label_smoothing"])
        context = BuildContext(
            dataset_size=len(dataset),
            embed_dim=head.output_dim,
            modalities=(name,),
            steps=config["run"]["steps"],
        )
        provides = ["labels"] + (["index"] if "index" in sample else [])
        self.losses = WeightedLosses.from_config(
            config["losses"], context=context, provides=provides, who="the speech_supcon recipe"
        )
        self.losses.check_views(self.num_views, "change num_views")
        if options["init_from"]:
            self.load_weights(options["init_from"])
        self.freeze_encoder = bool(options["freeze_encoder"])
        if self.freeze_encoder:
            for p in self.model["encoder"].parameters():
                p.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> SpeechClassificationRecipe:
        """As ``nn.Module.train``; a frozen encoder stays in eval mode (its batch-norm
        statistics and dropout stay fixed, as in a linear probe)."""
        super().train(mode)
        if self.freeze_encoder:
            self.model["encoder"].eval()
        return self

    def load_weights(self, path: str | Path) -> list[str]:
        """Load the tensors of a saved model whose names and shapes match; return their names."""
        own = self.model.state_dict()
        weights = model_weights(path)
        fits = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
        if not any(k.startswith("encoder.") for k in fits):
            raise ConfigError(
                f"[recipe_options] init_from {path}: none of its encoder weights fit this "
                "model; was it trained with the same encoder and options?"
            )
        self.model.load_state_dict(fits, strict=False)
        return sorted(fits)

    @property
    def modalities(self) -> tuple[str, ...]:
        return (self.modality,)

    def features(self, x: Tensor) -> Tensor:
        """Features ``(N, F)`` of clips (or features) as the encoder sees them, no views."""
        return self.model["encoder"](x)

    def encode(self, modality: str, inputs: Any) -> Tensor:
        if modality != self.modality:
            raise ValueError(f"speech_supcon encodes {self.modality!r}, not {modality!r}")
        return self.model["projector"](self.features(inputs))

    def predict(self, x: Tensor) -> Tensor:
        """Class ids ``(N,)`` of clips (no views)."""
        return self.model["classifier"](self.features(x)).argmax(dim=1)

    def draw(self, batch: Mapping[str, Any], generator: torch.Generator) -> list[Any]:
        x = batch[self.modality]
        if self.uses_view_set:
            return list(self.views(x, generator=generator))
        return [self.views(x, generator) for _ in range(self.num_views)]

    def embed_views(self, views: Sequence[Any]) -> Tensor:
        """The encoder's features ``h`` ``(n, M, F)``."""
        return torch.stack([self.features(v) for v in views], dim=1)

    def objective(self, z: Tensor, batch: Mapping[str, Any], views: Sequence[Any]) -> StepOutput:
        h = z
        labels = batch["label"]
        proj = self.model["projector"](h)
        total, components = self.losses(proj, **batch_inputs(batch))
        probe = h if self.objective_kind == "joint" else h.detach()
        logits = self.model["classifier"](probe).flatten(0, 1)  # (N*M, C)
        targets = labels[:, None].expand(-1, h.shape[1]).reshape(-1)
        ce = F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)
        components["ce"] = ce.detach()
        components["accuracy"] = (logits.argmax(1) == targets).float().mean()
        total = total + (self.ce_weight if self.objective_kind == "joint" else 1.0) * ce
        return StepOutput(total, components, proj.detach())
