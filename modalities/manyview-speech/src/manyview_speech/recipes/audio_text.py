"""The ``audio_text`` recipe: an audio encoder and a text encoder in one contrastive space."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from manyview.config import ConfigError
from manyview.recipes.base import StepOutput, loss_inputs
from manyview.recipes.contrastive import ContrastiveRecipe
from manyview_speech.recipes.classification import read_options

OPTIONS = {"audio": "audio", "text": "text", "positives": "text"}


class AudioTextRecipe(ContrastiveRecipe):
    """Audio-text contrastive training (CLAP / CLIP style) on the core contrastive recipe.

    Configure two modalities, the audio one (any audio encoder, with views and
    ``num_views``) and the text one (default encoder: ``char_ngram``, a bag of hashed
    character n-grams; any text encoder that takes a list of strings works, such as
    manyview-text's). The losses get ``(N, M, D)`` with the audio views first, then the text.
    ``[recipe_options]``:

    - ``audio``, ``text``: the modality names (default ``"audio"``, ``"text"``).
    - ``positives``: what labelled losses (``supcon``) count as positives: ``"text"``
      (default: clips with the same text, so repeated words or captions are not negatives),
      ``"label"`` (the dataset's labels) or ``"instance"`` (only the pair itself). Losses
      without labels (``clip``, ``infonce``) always treat the rest of the batch as negatives.

    :meth:`embed_audio` and :meth:`embed_text` give the shared-space embeddings for
    retrieval and zero-shot classification.
    """

    def __init__(self, config: Mapping[str, Any], dataset: Any) -> None:
        options = read_options(config, OPTIONS, "audio_text")
        if options["positives"] not in ("text", "label", "instance"):
            raise ConfigError(
                f"[recipe_options] positives must be 'text', 'label' or 'instance', got "
                f"{options['positives']!r}"
            )
        audio, text = options["audio"], options["text"]
        names = set(config["modalities"])
        if names != {audio, text}:
            raise ConfigError(
                f"audio_text recipe: configure exactly [modalities.{audio}] and "
                f"[modalities.{text}], got {sorted(names)}"
            )
        sample = dataset[0]
        if text in sample and not isinstance(sample[text], str):
            raise ConfigError(
                f"[modalities.{text}]: the dataset's {text!r} must be a string, got "
                f"{type(sample[text]).__name__}"
            )
        # audio first, then text, whatever the order in the file
        ordered = dict(config)
        ordered["modalities"] = {n: config["modalities"][n] for n in (audio, text)}
        super().__init__(ordered, dataset)
        self.audio, self.text, self.positives = audio, text, options["positives"]

    def embed_audio(self, x: Tensor) -> Tensor:
        """Shared-space embeddings ``(N, D)`` of clips (no views)."""
        return self.model["projectors"][self.audio](self.model["encoders"][self.audio](x))

    def embed_text(self, texts: list[str]) -> Tensor:
        """Shared-space embeddings ``(N, D)`` of texts."""
        return self.model["projectors"][self.text](self.model["encoders"][self.text](texts))

    def step(self, batch: Mapping[str, Any], generator: torch.Generator) -> StepOutput:
        z = self.embed(batch, generator)
        if self.positives == "text":
            ids: dict[str, int] = {}
            labels = [ids.setdefault(t, len(ids)) for t in batch[self.text]]
            batch = {**batch, "label": torch.tensor(labels, device=z.device)}
        elif self.positives == "instance":
            batch = {k: v for k, v in batch.items() if k != "label"}
        total = z.new_zeros(())
        components = {}
        for name, entry, loss, weight in zip(
            self.names, self.entries, self.losses, self.weights, strict=True
        ):
            value = loss(z, **loss_inputs(entry, loss, batch))
            components[name] = value.detach()
            total = total + weight * value
        return StepOutput(total, components, z.detach())
