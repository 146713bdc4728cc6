"""``reference_classifier``: the penultimate features of a small classifier trained on a
dataset's real images, as an image encoder.

It is the feature space of the ``generation`` benchmark
(:func:`manyview.benchmarks.generation.reference_classifier`), trained offline in seconds
on the dataset's ``train`` split and cached, so it is also a ready pretrained target where
nothing pretrained can be downloaded: a frozen teacher to distil from or align to (e.g. the
representation-alignment target of manyview-diffusion's ``repa`` configuration on digits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ReferenceEncoder"]


class ReferenceEncoder(nn.Module):
    """Images ``(N, C, H, W)`` in [0, 1] to the ``(N, 64)`` penultimate features of a
    :class:`~manyview.benchmarks.generation.ReferenceClassifier` trained on ``dataset``.

    Args:
        dataset (`str`, defaults to ``"digits"``): a registered dataset with ``image``
            samples and labels; its ``split="train"`` trains the classifier.
        dataset_options (`dict`, *optional*): its options (e.g. ``{"size": 16}``).
        seed (`int`, defaults to ``0``): the classifier's seed.
        cache (`bool`, defaults to `True`): reuse (and keep) the trained weights under the
            data root.

    Its parameters start at the trained weights and require grad (fine-tune it, or freeze
    it as a ``frozen`` teacher).
    """

    def __init__(
        self,
        dataset: str = "digits",
        *,
        dataset_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        super().__init__()
        import manyview
        from manyview.benchmarks.generation import reference_classifier
        from manyview.options import check_int

        seed = check_int(seed, "seed", "reference_classifier", least=0)
        options = {**dict(dataset_options or {}), "split": "train"}
        data = manyview.create("dataset", dataset, **options)
        fetch = getattr(data, "get_batch", None)
        if fetch is not None:
            batch = fetch(list(range(len(data))))
        else:
            from torch.utils.data import default_collate

            batch = default_collate([data[i] for i in range(len(data))])
        if "image" not in batch or "label" not in batch:
            raise ValueError(
                f"reference_classifier: dataset {dataset!r} needs 'image' samples with a "
                f"'label' (it has {sorted(batch)})"
            )
        images, labels = batch["image"], torch.as_tensor(batch["label"]).long()
        model = reference_classifier(images, labels, seed=seed, cache=cache)
        self.body = model.body.requires_grad_(True)
        self.image_shape = tuple(int(d) for d in images.shape[1:])
        self.output_dim = int(model.head.in_features)

    def forward(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or tuple(images.shape[1:]) != self.image_shape:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            want = "x".join(map(str, self.image_shape))
            raise ValueError(
                f"reference_classifier: expects images (N, {want}) in [0, 1], got {got}"
            )
        return self.body(images.to(next(self.body.parameters()).dtype))

    def example_inputs(self, n: int = 2) -> Tensor:
        return torch.rand(n, *self.image_shape, generator=torch.Generator().manual_seed(0))
