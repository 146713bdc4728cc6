"""manyview's distillation losses: a student output against teacher targets. Build them by
name with ``manyview.create("loss", name, ...)``, or import the classes from here."""

from manyview.distill.base import DistillationLoss
from manyview.distill.crd import CRD
from manyview.distill.dino import DINOLoss
from manyview.distill.divergence_clip import DivergenceClip
from manyview.distill.feature import FeatureMatching
from manyview.distill.kd import KD
from manyview.distill.mi_alpha import MIAlpha
from manyview.distill.rkd import RKD
from manyview.distill.score_kd import ScoreKD
from manyview.distill.self_distill_gt import SelfDistillGT
from manyview.distill.sla import SLALoss
from manyview.distill.token_contrast import TokenContrast

__all__ = [
    "CRD",
    "KD",
    "RKD",
    "DINOLoss",
    "DistillationLoss",
    "DivergenceClip",
    "FeatureMatching",
    "MIAlpha",
    "SLALoss",
    "ScoreKD",
    "SelfDistillGT",
    "TokenContrast",
]
