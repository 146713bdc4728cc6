"""Built-in teachers: EMA, frozen, ensemble, privileged and self."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl

_EXAMPLES = "manyview.testing.examples"

BUILTIN_TEACHERS: dict[str, tuple[str, str]] = {
    "ema": (
        "manyview.teachers.ema:EMATeacher",
        "Exponential moving average of the student, constant or cosine momentum (BYOL/DINO)",
    ),
    "frozen": (
        "manyview.teachers.frozen:FrozenTeacher",
        "A fixed module, or one loaded from a local safetensors checkpoint",
    ),
    "ensemble": (
        "manyview.teachers.ensemble:EnsembleTeacher",
        "Several teachers combined, with UniSD's agreement weighting",
    ),
    "privileged": (
        "manyview.teachers.privileged:PrivilegedTeacher",
        "A teacher that sees inputs the student does not (cross-modal distillation)",
    ),
    "self": (
        "manyview.teachers.self_teacher:SelfTeacher",
        "The student itself under torch.no_grad, for self-evaluating objectives",
    ),
}


@hookimpl
def manyview_register_teachers(register: Any) -> None:
    for name, (factory, summary) in BUILTIN_TEACHERS.items():
        register(name, factory, summary=summary, example_kwargs=f"{_EXAMPLES}:{name}_kwargs")
