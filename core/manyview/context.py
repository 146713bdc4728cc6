"""Building registered things from a configuration, with what the recipe knows filled in.

A factory may leave some constructor arguments to the recipe that builds it: an encoder's
input size is read from the data, a loss with per-sample state needs the dataset size, an
adapter between a student and a teacher needs both widths, an EMA teacher needs the student.
Instead of guessing from parameter names, a factory declares them in ``from_context``, a
mapping *constructor argument -> context key*::

    class ISogCLR(MultiViewLoss):
        from_context = {"num_samples": "dataset_size"}

    class FeatureMatching(DistillationLoss):
        from_context = {"student_dim": "student_dim", "teacher_dim": "teacher_dim"}

:func:`build` passes ``context[key]`` for every declared argument that the user's options do
not give and the context knows. The keys a recipe of the core provides (a plugin's recipe
may add its own; document them):

=================  ==================================================================
key                value
=================  ==================================================================
``dataset_size``   the training dataset's length
``input_dim``      the last dimension of one sample of the encoder's modality (vectors)
``embed_dim``      the width of the embeddings the losses see (D)
``student_dim``    the width of the student's output (distillation)
``teacher_dim``    the width of the teacher's output (distillation)
``student``        the student module (``ema`` and ``self`` teachers)
``modality``       the modality the student sees (a teacher's input ``key``)
``modalities``     every modality the recipe trains
``steps``          the run's optimizer steps (schedules such as EMA momentum)
``context``        the :class:`BuildContext` itself (to build nested specs, e.g. the
                   ``ensemble`` teacher's teachers)
=================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["BuildContext", "build", "context_arguments"]


class BuildContext(Mapping[str, Any]):
    """What a recipe knows while it builds its parts: a read-only mapping of context keys.

    ``context.with_(student_dim=64)`` returns a copy with more keys.
    """

    def __init__(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        self._values = {k: v for k, v in {**dict(values or {}), **more}.items() if v is not None}

    def __getitem__(self, key: str) -> Any:
        if key == "context":
            return self
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key == "context" or key in self._values

    def with_(self, **more: Any) -> BuildContext:
        """A copy with ``more`` keys added (``None`` values are left out)."""
        return BuildContext(self._values, **more)

    def __repr__(self) -> str:
        return f"BuildContext({', '.join(sorted(self._values))})"


def context_arguments(
    factory: Any, options: Mapping[str, Any], context: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The arguments ``factory.from_context`` asks for that ``options`` lacks and
    ``context`` has."""
    wanted = getattr(factory, "from_context", None) or {}
    if not isinstance(wanted, Mapping):
        raise TypeError(
            f"{getattr(factory, '__qualname__', factory)!r}.from_context must map constructor "
            f"arguments to context keys, got {type(wanted).__name__}"
        )
    if context is None:
        return {}
    return {
        arg: context[key] for arg, key in wanted.items() if arg not in options and key in context
    }


def build(
    kind: str,
    name: str,
    options: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> Any:
    """``manyview.create(kind, name, **options)`` with the factory's ``from_context``
    arguments filled in from ``context`` where ``options`` does not give them."""
    import manyview

    options = dict(options or {})
    factory = manyview.entry(kind, name).load()
    return manyview.create(
        kind, name, **{**context_arguments(factory, options, context), **options}
    )
