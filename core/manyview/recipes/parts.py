"""Building blocks recipes share: view pipelines, projectors, and encoders and teachers built
from their configuration tables with one-line errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from manyview.config import ConfigError
from manyview.context import build

__all__ = [
    "Projector",
    "ViewPipeline",
    "build_encoder",
    "build_projector",
    "build_teacher",
    "build_views",
    "first_sample",
    "recipe_options",
]


class ViewPipeline(nn.Module):
    """Views applied in order, each drawing its randomness from the step's generator."""

    def __init__(self, views: list[nn.Module]) -> None:
        super().__init__()
        self.views = nn.ModuleList(views)

    def forward(self, x: Any, generator: torch.Generator) -> Any:
        for view in self.views:
            x = view(x, generator=generator)
        return x


class Projector(nn.Module):
    """Maps encoder features to the shared space: ``(N, in_dim) -> (N, output_dim)``.

    A linear map to ``out_dim``, SimCLR's two-layer MLP head (Linear, GELU, Linear) when
    ``hidden`` > 0, or the identity when neither is given.

    Args:
        in_dim: the encoder's ``output_dim``.
        out_dim: the projected width (``None``: ``in_dim``, and the identity without
            ``hidden``).
        hidden: the MLP head's hidden width (0: no hidden layer).
    """

    def __init__(self, in_dim: int, out_dim: int | None = None, hidden: int = 0) -> None:
        super().__init__()
        self.output_dim = int(out_dim or in_dim)
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, self.output_dim)
            )
        elif out_dim:
            self.net = nn.Linear(in_dim, self.output_dim)
        else:
            self.net = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def recipe_options(
    config: Mapping[str, Any], defaults: Mapping[str, Any], who: str
) -> dict[str, Any]:
    """The ``[recipe_options]`` table with ``defaults`` filled in; a key the recipe does not
    take is a one-line ConfigError with a did-you-mean (``who``: the recipe's name)."""
    from manyview.registry import did_you_mean

    given = dict(config.get("recipe_options") or {})
    for key in given:
        if key not in defaults:
            hint = did_you_mean(key, defaults) or f"; allowed: {', '.join(defaults) or 'none'}"
            raise ConfigError(f"[recipe_options] ({who}) unknown key {key!r}{hint}")
    return {**defaults, **given}


def option_table(value: Any, name: str) -> dict[str, Any]:
    """``value`` (a ``[recipe_options]`` entry) as a dict, or a one-line ConfigError
    ``[recipe_options] <name> must be a table, got <type>``."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"[recipe_options] {name} must be a table, got {type(value).__name__}")
    return dict(value)


def option_switch(value: Any, name: str) -> bool:
    """``value`` (a ``[recipe_options]`` entry) if it is a bool, or a one-line ConfigError
    ``[recipe_options] <name> must be true or false, got <value>``."""
    if not isinstance(value, bool):
        raise ConfigError(f"[recipe_options] {name} must be true or false, got {value!r}")
    return value


def sub_options(given: Any, defaults: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A nested ``[recipe_options]`` table (e.g. ``moco_options``) with ``defaults`` filled
    in; not a table, or a key it does not take, is a one-line ConfigError with a
    did-you-mean."""
    from manyview.registry import did_you_mean

    given = option_table(given, name)
    for key in given:
        if key not in defaults:
            hint = did_you_mean(key, defaults) or f"; allowed: {', '.join(defaults)}"
            raise ConfigError(f"[recipe_options] {name}: unknown key {key!r}{hint}")
    return {**defaults, **given}


def first_sample(
    dataset: Any, modalities: Iterable[str], *, label_for: str | None = None
) -> Mapping[str, Any]:
    """``dataset[0]``, checked to hold every modality a recipe configures (and a ``label``
    when ``label_for``, the recipe's name, is given).

    Raises:
        ConfigError: ``[modalities.<name>]: the dataset's samples have no '<name>' (they
            have [...])``, or ``<label_for>: the dataset's samples have no 'label'``.
    """
    sample = dataset[0]
    for name in modalities:
        if name not in sample:
            raise ConfigError(
                f"[modalities.{name}]: the dataset's samples have no {name!r} "
                f"(they have {sorted(k for k in sample if k not in ('label', 'index'))})"
            )
    if label_for is not None and "label" not in sample:
        raise ConfigError(f"{label_for}: the dataset's samples have no 'label'")
    return sample


def build_projector(
    modality: Mapping[str, Any], in_dim: int, *, default_dim: int | None = None
) -> Projector:
    """The ``[modalities.<name>]`` projector over an encoder of width ``in_dim``:
    ``Projector(in_dim, projector_dim or default_dim, projector_hidden)`` (with the default
    ``default_dim=None``, ``projector_dim = 0`` and no hidden layer give the identity)."""
    return Projector(in_dim, modality["projector_dim"] or default_dim, modality["projector_hidden"])


def build_encoder(name: str, modality: Mapping[str, Any], dataset: Any) -> nn.Module:
    """The ``[modalities.<name>]`` encoder, with ``input_dim`` (and any other
    ``from_context`` argument) read from the data; it must report ``output_dim``."""
    where = f"[modalities.{name}]"
    sample = dataset[0].get(name)
    context = {"input_dim": int(sample.shape[-1])} if isinstance(sample, Tensor) else {}
    try:
        encoder = build("encoder", modality["encoder"], modality["encoder_options"], context)
    except (LookupError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where} encoder {modality['encoder']!r}: {exc}") from None
    if not isinstance(getattr(encoder, "output_dim", None), int):
        raise ConfigError(f"{where} encoder {modality['encoder']!r} does not report output_dim")
    return encoder


def build_views(name: str, modality: Mapping[str, Any]) -> ViewPipeline:
    """The ``[modalities.<name>]`` views as one pipeline."""
    views = []
    for i, spec in enumerate(modality["views"]):
        where = f"[modalities.{name}] views[{i}] ({spec['name']})"
        try:
            views.append(build("view", spec["name"], spec["options"]))
        except (LookupError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return ViewPipeline(views)


def build_teacher(spec: Mapping[str, Any] | None, context: Mapping[str, Any]) -> nn.Module:
    """The ``[teacher]`` table, with the teacher's ``from_context`` arguments (the student,
    its modality, the run's steps, ...) filled in."""
    if spec is None:
        raise ConfigError(
            'add a [teacher] table, e.g. name = "ema" (an average of the student), "frozen" or '
            '"privileged" (manyview list teacher)'
        )
    try:
        return build("teacher", spec["name"], spec["options"], context)
    except (LookupError, TypeError, ValueError) as exc:
        raise ConfigError(f"[teacher] ({spec['name']}): {exc}") from None
