"""Built-in distillation losses: a student output against teacher targets."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl
from manyview.registry import register_all

BUILTIN_DISTILLATION_LOSSES: dict[str, tuple[str, str]] = {
    "kd": (
        "manyview.distill.kd:KD",
        "Hinton knowledge distillation: T^2 KL of tempered softmaxes, optional hard labels",
    ),
    "feature": (
        "manyview.distill.feature:FeatureMatching",
        "Feature matching (MSE, cosine, smooth-L1), optional learned adapter (FitNets hints)",
    ),
    "token_contrast": (
        "manyview.distill.token_contrast:TokenContrast",
        "UniSD token-level contrastive hinge against a negative-context teacher",
    ),
    "rkd": (
        "manyview.distill.rkd:RKD",
        "Relational knowledge distillation: distance and angle terms (Park et al. 2019)",
    ),
    "crd": (
        "manyview.distill.crd:CRD",
        "Contrastive representation distillation, optional memory bank (Tian et al. 2020)",
    ),
    "score_kd": (
        "manyview.distill.score_kd:ScoreKD",
        "Score distillation (DiSCo): KL over each query's candidate scores, several teachers",
    ),
    "dino": (
        "manyview.distill.dino:DINOLoss",
        "DINO self-distillation with centering and sharpening (Caron et al. 2021)",
    ),
    "self_distill_gt": (
        "manyview.distill.self_distill_gt:SelfDistillGT",
        "Self-distillation with weighted ground truth (Borup & Andersen 2021)",
    ),
    "mi_alpha": (
        "manyview.distill.mi_alpha:MIAlpha",
        "Interpolated MI-alpha bound between student and teacher features (Distiller 2021)",
    ),
    "divergence_clip": (
        "manyview.distill.divergence_clip:DivergenceClip",
        "UniSD divergence clipping around any per-token divergence loss",
    ),
    "sla": (
        "manyview.distill.sla:SLALoss",
        "Self-supervised label augmentation: joint labels, aggregation, self-distillation",
    ),
}


@hookimpl
def manyview_register_losses(register: Any) -> None:
    register_all(register, BUILTIN_DISTILLATION_LOSSES)  # the class names match too (KD, RKD)
