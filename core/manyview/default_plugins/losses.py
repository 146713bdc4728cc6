"""Built-in losses: the contrastive family over M views and M modalities."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl

# name -> (factory, summary, metadata). Metadata used by the contract tests and the CLI:
# views = (min, max or None), needs = keyword inputs the loss requires, labels = their kind,
# example_kwargs = constructor arguments for the contract tests when the defaults need some.
BUILTIN_LOSSES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "infonce": (
        "manyview.losses.infonce:InfoNCE",
        "NT-Xent (SimCLR); multi-positive over M views",
        {"views": (2, None)},
    ),
    "clip": (
        "manyview.losses.clip:CLIPLoss",
        "Symmetric two-modality InfoNCE with an optional learnable logit scale (CLIP)",
        {"views": (2, 2)},
    ),
    "siglip": (
        "manyview.losses.siglip:SigLIPLoss",
        "Sigmoid pairwise image-text loss with learnable scale and bias (SigLIP)",
        {"views": (2, 2)},
    ),
    "pwe": (
        "manyview.losses.pwe:PairwiseLoss",
        "Mean of a two-view loss over all C(M,2) view pairs (PWE baseline)",
        {"views": (2, None)},
    ),
    "mv_infonce": (
        "manyview.losses.mv_infonce:MVInfoNCE",
        "Multi-view InfoNCE: one term per instance over all M views (Koromilas et al. 2025)",
        {"views": (2, None)},
    ),
    "mv_dhel": (
        "manyview.losses.dhel:MVDHEL",
        "Multi-view decoupled hyperspherical energy loss (Koromilas et al. 2025)",
        {"views": (2, None)},
    ),
    "dhel": (
        "manyview.losses.dhel:DHEL",
        "Two-view decoupled hyperspherical energy loss (Koromilas et al. ICML 2024)",
        {"views": (2, 2)},
    ),
    "pvc": (
        "manyview.losses.pvc:PolyViewContrastive",
        "Poly-View contrastive loss, geometric or arithmetic (Shidani et al. ICLR 2024)",
        {"views": (2, None)},
    ),
    "dcl": (
        "manyview.losses.dcl:DCL",
        "Decoupled contrastive learning: positives out of the denominator (Yeh et al. 2022)",
        {"views": (2, None)},
    ),
    "dclw": (
        "manyview.losses.dcl:DCLW",
        "DCL with von Mises-Fisher weighting of the positives (Yeh et al. 2022)",
        {"views": (2, None)},
    ),
    "supcon": (
        "manyview.losses.supcon:SupCon",
        "Supervised contrastive loss, L_out or L_in, by labels or a positive mask (Khosla 2020)",
        {"views": (1, None), "labels": "class"},
    ),
    "isogclr": (
        "manyview.losses.isogclr:ISogCLR",
        "Robust global contrastive loss with per-sample learned temperatures (Qiu 2023)",
        {"views": (2, None), "needs": ("index",), "example_kwargs": {"num_samples": 64}},
    ),
    "supremix": (
        "manyview.losses.supremix:SupReMix",
        "Supervised contrastive regression with mixup hard negatives and positives (Wu 2023)",
        {"views": (1, None), "needs": ("labels",), "labels": "scalar"},
    ),
}


@hookimpl
def manyview_register_losses(register: Any) -> None:
    for name, (factory, summary, meta) in BUILTIN_LOSSES.items():
        register(name, factory, summary=summary, **meta)
