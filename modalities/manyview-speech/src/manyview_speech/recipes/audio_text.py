"""The ``audio_text`` recipe: an audio encoder and a text encoder in one contrastive space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from manyview.config import ConfigError
from manyview.recipes import ContrastiveRecipe, StepOutput, batch_inputs, recipe_options

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
        options = recipe_options(config, OPTIONS, "audio_text")
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

    example_config = """
[run]
recipe = "audio_text"
steps = 4
batch_size = 6
[data]
name = "synthetic"
options = { modalities = { audio = [1600], text = "text" }, num_samples = 24, num_classes = 3 }
[modalities.audio]
encoder = "logmel_cnn"
encoder_options = { n_mels = 16, channels = [8, 8], output_dim = 8 }
views = [{ name = "audio_gain", options = { min_db = -3, max_db = 3 } }]
[modalities.text]
encoder = "char_ngram"
encoder_options = { output_dim = 8, embed_dim = 8, buckets = 256 }
[[losses]]
name = "supcon"
"""

    def embed_audio(self, x: Tensor) -> Tensor:
        """Shared-space embeddings ``(N, D)`` of clips (no views)."""
        return self.encode(self.audio, x)

    def embed_text(self, texts: list[str]) -> Tensor:
        """Shared-space embeddings ``(N, D)`` of texts."""
        return self.encode(self.text, texts)

    def objective(self, z: Tensor, batch: Mapping[str, Any], views: Sequence[Any]) -> StepOutput:
        """The losses with the configured positives: ``labels`` are the texts' ids
        (``"text"``), the dataset's labels (``"label"``) or none (``"instance"``)."""
        inputs = batch_inputs(batch)
        if self.positives == "text":
            ids: dict[str, int] = {}
            labels = [ids.setdefault(t, len(ids)) for t in batch[self.text]]
            inputs["labels"] = torch.tensor(labels, device=z.device)
        elif self.positives == "instance":
            inputs.pop("labels", None)
        total, components = self.losses(z, **inputs)
        return StepOutput(total, components, z.detach())
