"""The teacher protocol: targets for a batch without gradients, and maybe an update.

A teacher is an ``nn.Module``:

- **input**: a mapping modality -> batch, the batch a recipe sees with the student's
  modality replaced by the view the teacher should look at (``{"image": view, "text":
  [...], "label": ...}``). A teacher reads the entries named by its :attr:`Teacher.keys`
  (one for ``ema``, ``frozen`` and ``self``, the ``teacher_keys`` for ``privileged``); a
  teacher that reads one entry also takes that entry's batch directly (``teacher(x)``).
- **output**: targets computed under ``torch.no_grad()`` (a tensor ``(N, D)`` for the
  built-in teachers).
- :meth:`Teacher.update` ``(student, step)``: called after every optimizer step (a no-op for
  teachers that never change); ``state_dict``/``load_state_dict`` hold all of its state;
  no parameter requires grad.
- ``from_context``: constructor arguments a recipe fills in (the ``student`` module, the
  input ``key``, the run's ``steps``; see :mod:`manyview.context`), so every built-in
  teacher can be built from a TOML ``[teacher]`` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = ["Teacher", "call_module", "read_key", "trainable_parameter_names"]


def trainable_parameter_names(module: nn.Module, limit: int = 3) -> list[str]:
    return [name for name, p in module.named_parameters() if p.requires_grad][:limit]


def read_key(inputs: Any, key: str | None, who: str) -> Any:
    """The entry ``key`` of a mapping input; the input itself when ``key`` is ``None`` or
    the input is not a mapping (a teacher that reads one entry may be given that entry's
    batch directly, and a mapping without a key is passed to the module as keywords)."""
    if key is None or not isinstance(inputs, Mapping):
        return inputs
    if key not in inputs:
        raise ValueError(
            f"{who}: reads the batch's {key!r}, which the batch lacks (it has {sorted(inputs)})"
        )
    return inputs[key]


class Teacher(nn.Module):
    """Base class of teachers. Subclasses implement :meth:`targets`.

    Attributes:
        keys: the entries of a mapping input this teacher reads.
    """

    from_context: ClassVar[dict[str, str]] = {}

    @property
    def keys(self) -> tuple[str, ...]:
        key = getattr(self, "key", None)
        return (key,) if key is not None else ()

    def forward(self, inputs: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return self.targets(inputs, **kwargs)

    def targets(self, inputs: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def update(self, student: nn.Module | None = None, step: int | None = None) -> None:
        """Called after each optimizer step; the default does nothing."""

    def train(self, mode: bool = True) -> Teacher:
        # Teachers stay in eval mode (dropout off, batch-norm statistics frozen).
        return super().train(False)

    def hold_student(self, student: nn.Module, who: str) -> None:
        """Keep ``student`` by reference as :attr:`student`: not a submodule, so neither its
        parameters nor its state are the teacher's (an EMA teacher averages it, a self
        teacher calls it).

        Args:
            student: the student module.
            who: the teacher's registered name, for the error message.

        Raises:
            ValueError: ``student`` is not an ``nn.Module``.
        """
        if not isinstance(student, nn.Module):
            raise ValueError(f"{who}: student must be an nn.Module, got {type(student).__name__}")
        self._held_student = [student]  # a plain list: not a submodule, not in state_dict

    @property
    def student(self) -> nn.Module:
        """The student given to :meth:`hold_student` (an ``AttributeError`` before)."""
        held = self.__dict__.get("_held_student")
        if held is None:  # falls back to nn.Module's lookup (a submodule named student)
            raise AttributeError(f"{type(self).__name__} holds no student")
        return held[0]

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Any:
        """A batch this teacher accepts (for the contract tests): that of its ``module`` or
        held student when it has ``example_inputs``, else ``torch.randn(n, 8)``."""
        module = getattr(self, "module", None)
        if module is None:
            module = self.__dict__.get("_held_student", [None])[0]
        if module is not None and hasattr(module, "example_inputs"):
            return module.example_inputs(n)
        return torch.randn(n, 8, generator=generator)


def call_module(module: nn.Module, batch: Any) -> Tensor:
    """Call ``module`` on a tensor, a tuple (as positional args) or a dict (as keywords)."""
    if isinstance(batch, dict):
        return module(**batch)
    if isinstance(batch, tuple):
        return module(*batch)
    return module(batch)
