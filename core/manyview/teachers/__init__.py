"""manyview's teachers. Build them by name with ``manyview.create("teacher", name, ...)``."""

from manyview.teachers.base import Teacher, read_key
from manyview.teachers.ema import EMATeacher
from manyview.teachers.ensemble import EnsembleTeacher, agreement_weights
from manyview.teachers.frozen import FrozenTeacher, load_weights
from manyview.teachers.privileged import PrivilegedTeacher
from manyview.teachers.self_teacher import SelfTeacher

__all__ = [
    "EMATeacher",
    "EnsembleTeacher",
    "FrozenTeacher",
    "PrivilegedTeacher",
    "SelfTeacher",
    "Teacher",
    "agreement_weights",
    "load_weights",
    "read_key",
]
