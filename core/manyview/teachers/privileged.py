"""A teacher with privileged information: it sees inputs the student never sees (other
modalities, clean views, hindsight) — Vapnik & Vashist 2009's learning using privileged
information; the base of cross-modal distillation (Gupta, Hoffman, Malik 2016)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.teachers.base import Teacher, trainable_parameter_names

PASS_THROUGH = ("label", "labels", "index")


class RunFusion(nn.Module):
    """A trained run's embeddings of several modalities, fused into one ``(N, D)`` target:
    the mean of the L2-normalised embeddings (``fuse="mean"``, the joint embedding of a
    contrastive run) or their concatenation (``fuse="concat"``)."""

    def __init__(self, run: str | Path, keys: Sequence[str], fuse: str = "mean") -> None:
        super().__init__()
        from manyview.runs import RunEncoder, load_run

        if fuse not in ("mean", "concat"):
            raise ValueError(f"privileged: fuse must be 'mean' or 'concat', got {fuse!r}")
        loaded = load_run(run)
        self.encoders = nn.ModuleDict({k: RunEncoder(loaded, k) for k in keys})
        self.fuse = fuse

    def forward(self, **inputs: Any) -> Tensor:
        z = [F.normalize(enc(inputs[k]).float(), dim=-1) for k, enc in self.encoders.items()]
        return torch.cat(z, dim=-1) if self.fuse == "concat" else torch.stack(z).mean(0)


class PrivilegedTeacher(Teacher):
    """A frozen teacher over several inputs of a batch, beside a student that sees fewer.

    The batch is a mapping (e.g. ``{"image": ..., "text": ..., "audio": ..., "label": ...}``).
    The teacher is called with the ``teacher_keys`` entries as keyword arguments; the student
    gets only :meth:`student_inputs` — its ``student_keys`` entries — so teacher-only inputs
    can never reach the student's forward.

    Args:
        module: the teacher network, called as ``module(**{key: batch[key]})``.
        run: instead of ``module``, a trained manyview run directory that embeds every
            teacher key (e.g. an image+text contrastive run); its embeddings are fused by
            ``fuse`` (:class:`RunFusion`). This is the form a TOML ``[teacher]`` table uses:
            ``options = { run = "runs/image-text", teacher_keys = ["image", "text"] }``.
        teacher_keys: the inputs the teacher sees.
        student_keys: the inputs the student sees (may overlap the teacher's); a recipe
            fills in its modalities.
        fuse: with ``run``: ``"mean"`` (default) or ``"concat"``.
        freeze: freeze the module's parameters in place (otherwise they must already be
            frozen, as for the ``frozen`` teacher).
    """

    from_context: ClassVar[dict[str, str]] = {"student_keys": "modalities"}

    def __init__(
        self,
        module: nn.Module | None = None,
        *,
        teacher_keys: Sequence[str],
        student_keys: Sequence[str],
        run: str | Path | None = None,
        fuse: str = "mean",
        freeze: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(teacher_keys, str) or isinstance(student_keys, str):
            raise ValueError(
                "privileged: teacher_keys and student_keys must be lists of names, e.g. "
                'teacher_keys = ["image", "text"]'
            )
        teacher_keys, student_keys = tuple(teacher_keys), tuple(student_keys)
        if not teacher_keys or not student_keys:
            raise ValueError("privileged: teacher_keys and student_keys must both be non-empty")
        if set(teacher_keys) <= set(student_keys):
            raise ValueError(
                f"privileged: the teacher sees nothing the student does not ({teacher_keys} vs "
                f"{student_keys}); use the 'frozen' teacher instead"
            )
        if (module is None) == (run is None):
            raise ValueError("privileged: pass exactly one of module= or run=")
        if run is not None:
            module, freeze = RunFusion(run, teacher_keys, fuse), True
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"privileged: module must be an nn.Module, got {type(module).__name__}"
            )
        trainable = trainable_parameter_names(module)
        if trainable and not freeze:
            raise ValueError(
                f"privileged: the module has trainable parameters ({', '.join(trainable)}, ...); "
                "pass a frozen copy, or freeze=True"
            )
        module.requires_grad_(False)
        self.module = module.eval()
        self.teacher_keys, self.student_keys = teacher_keys, student_keys

    @property
    def keys(self) -> tuple[str, ...]:
        return self.teacher_keys

    @property
    def privileged_keys(self) -> tuple[str, ...]:
        """The inputs only the teacher sees."""
        return tuple(k for k in self.teacher_keys if k not in self.student_keys)

    def _pick(self, batch: Mapping[str, Any], keys: Sequence[str], who: str) -> dict[str, Any]:
        if not isinstance(batch, Mapping):
            raise ValueError(
                f"privileged: the batch must be a mapping of inputs, got {type(batch).__name__}"
            )
        missing = [k for k in keys if k not in batch]
        if missing:
            raise ValueError(
                f"privileged: the batch lacks {missing} that the {who} needs; it has {sorted(batch)}"
            )
        return {k: batch[k] for k in keys}

    def targets(self, inputs: Mapping[str, Any], **kwargs: Any) -> Any:
        return self.module(**self._pick(inputs, self.teacher_keys, "teacher"))

    def student_inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The part of ``batch`` the student may see: its keys (plus labels and indices)."""
        out = self._pick(batch, self.student_keys, "student")
        out.update({k: batch[k] for k in PASS_THROUGH if k in batch and k not in self.teacher_keys})
        return out

    def example_inputs(self, n: int = 4, *, generator: torch.Generator | None = None) -> Any:
        if hasattr(self.module, "example_inputs"):
            return self.module.example_inputs(n)
        keys = dict.fromkeys((*self.teacher_keys, *self.student_keys))
        return {k: torch.randn(n, 8, generator=generator) for k in keys}
