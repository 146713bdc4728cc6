"""Zero-shot prompts: template sets, filling them with class names, prompt ensembling.

Zero-shot classification embeds one sentence per class ("a photo of the digit seven") with a
text tower and picks the class whose text embedding is closest to the input's (Radford et
al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021,
section 3.1.4). Ensembling several templates per class helps: each class embedding is the
mean of its L2-normalised template embeddings, normalised again (:func:`ensemble`).

Templates and their formatting are plain strings, whatever the modalities; the ``crossmodal``
benchmark uses them for every modality it classifies through text prompts, and manyview-text
re-exports them in ``manyview_text.prompts`` beside its text-tower helpers.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "DIGIT_NAMES",
    "DIGIT_TEMPLATES",
    "SPOKEN_WORD_TEMPLATES",
    "TEMPLATES",
    "Template",
    "ensemble",
    "format_prompts",
    "get_templates",
]

Template = str | Callable[[str], str]

DIGIT_NAMES: tuple[str, ...] = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)
"""The ten digits' names, in label order."""

DIGIT_TEMPLATES: tuple[str, ...] = (
    "a photo of the digit {}.",
    "a picture of the number {}.",
    "a handwritten {}.",
    "an image of the digit {}.",
    "a blurry photo of the digit {}.",
    "a drawing of the number {}.",
)
"""Templates for images of digits."""

SPOKEN_WORD_TEMPLATES: tuple[str, ...] = (
    "the spoken word {}.",
    "a recording of someone saying {}.",
    "a voice saying the word {}.",
    "the sound of the word {}.",
)
"""Templates for recordings of spoken words."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "digit": DIGIT_TEMPLATES,
    "spoken_word": SPOKEN_WORD_TEMPLATES,
    "plain": ("{}",),
}
"""Named template sets for :func:`get_templates`."""


def _check_template(template: Any) -> Template:
    if callable(template):
        return template
    if not isinstance(template, str):
        raise ValueError(
            f"a template is a str with '{{}}' or a callable, not {type(template).__name__}"
        )
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"template {template!r} is not a valid format string: {exc}") from None
    if not fields or any(f not in ("", "0") for f in fields):
        raise ValueError(
            f"template {template!r} must have a '{{}}' where the class name goes "
            "(and no other replacement fields; write a literal brace as '{{' or '}}')"
        )
    return template


def get_templates(templates: str | Sequence[Template] = "digit") -> tuple[Template, ...]:
    """Templates from a set's name (:data:`TEMPLATES`: ``"digit"``, ``"spoken_word"``,
    ``"plain"``), one user template (a str with ``{}``) or a sequence of them (strings with
    ``{}`` or callables ``name -> prompt``).

    Raises:
        ValueError: an unknown set name, an empty sequence, or a template without ``{}``.
    """
    if isinstance(templates, str):
        if templates in TEMPLATES:
            return TEMPLATES[templates]
        if "{" not in templates:
            raise ValueError(
                f"unknown template set {templates!r}: use one of {sorted(TEMPLATES)} or "
                "templates with '{}' for the class name"
            )
        return (_check_template(templates),)
    if callable(templates):
        return (templates,)
    out = tuple(_check_template(t) for t in templates)
    if not out:
        raise ValueError("templates: got an empty sequence; give at least one template")
    return out


def _check_classnames(classnames: Sequence[str]) -> list[str]:
    if isinstance(classnames, str) or not isinstance(classnames, Sequence) or not classnames:
        raise ValueError("classnames must be a non-empty list of strings")
    for i, name in enumerate(classnames):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"classnames[{i}] must be a non-empty str, got {name!r}")
    return list(classnames)


def format_prompts(
    classnames: Sequence[str], templates: str | Sequence[Template] = "digit"
) -> list[list[str]]:
    """Every class's prompts: ``prompts[c][t]`` is template t filled with class c's name."""
    names = _check_classnames(classnames)
    temps = get_templates(templates)
    return [[t(name) if callable(t) else t.format(name) for t in temps] for name in names]


def ensemble(embeddings: Tensor) -> Tensor:
    r"""Prompt ensembling: :math:`w_c = \mathrm{normalize}(\frac1T \sum_t
    \mathrm{normalize}(e_{ct}))`.

    Inputs: ``(C, T, D)`` template embeddings per class (or ``(T, D)`` for one class).
    Output: ``(C, D)`` (or ``(D,)``), unit rows.
    """
    if not isinstance(embeddings, Tensor) or embeddings.dim() not in (2, 3):
        shape = (
            tuple(embeddings.shape) if isinstance(embeddings, Tensor) else type(embeddings).__name__
        )
        raise ValueError(f"ensemble: expects embeddings (C, T, D) or (T, D), got {shape}")
    return F.normalize(F.normalize(embeddings, dim=-1).mean(dim=-2), dim=-1)
