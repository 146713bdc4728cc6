"""Built-in losses: the contrastive family over M views and M modalities."""

from __future__ import annotations

from typing import Any

from manyview.hookspecs import hookimpl

# name -> (factory, summary). Everything else about a loss (the views it takes, the inputs it
# needs, the constructor arguments a recipe fills in) is declared on its class.
BUILTIN_LOSSES: dict[str, tuple[str, str]] = {
    "infonce": (
        "manyview.losses.infonce:InfoNCE",
        "NT-Xent (SimCLR); multi-positive over M views",
    ),
    "clip": (
        "manyview.losses.clip:CLIPLoss",
        "Symmetric two-modality InfoNCE with an optional learnable logit scale (CLIP)",
    ),
    "siglip": (
        "manyview.losses.siglip:SigLIPLoss",
        "Sigmoid pairwise image-text loss with learnable scale and bias (SigLIP)",
    ),
    "pwe": (
        "manyview.losses.pwe:PairwiseLoss",
        "Mean of a two-view loss over all C(M,2) view pairs (PWE baseline)",
    ),
    "mv_infonce": (
        "manyview.losses.mv_infonce:MVInfoNCE",
        "Multi-view InfoNCE: one term per instance over all M views (Koromilas et al. 2025)",
    ),
    "mv_dhel": (
        "manyview.losses.dhel:MVDHEL",
        "Multi-view decoupled hyperspherical energy loss (Koromilas et al. 2025)",
    ),
    "dhel": (
        "manyview.losses.dhel:DHEL",
        "Two-view decoupled hyperspherical energy loss (Koromilas et al. ICML 2024)",
    ),
    "pvc": (
        "manyview.losses.pvc:PolyViewContrastive",
        "Poly-View contrastive loss, geometric or arithmetic (Shidani et al. ICLR 2024)",
    ),
    "dcl": (
        "manyview.losses.dcl:DCL",
        "Decoupled contrastive learning: positives out of the denominator (Yeh et al. 2022)",
    ),
    "dclw": (
        "manyview.losses.dcl:DCLW",
        "DCL with von Mises-Fisher weighting of the positives (Yeh et al. 2022)",
    ),
    "supcon": (
        "manyview.losses.supcon:SupCon",
        "Supervised contrastive loss, L_out or L_in, by labels or a positive mask (Khosla 2020)",
    ),
    "isogclr": (
        "manyview.losses.isogclr:ISogCLR",
        "Robust global contrastive loss with per-sample learned temperatures (Qiu 2023)",
    ),
    "supremix": (
        "manyview.losses.supremix:SupReMix",
        "Supervised contrastive regression with mixup hard negatives and positives (Wu 2023)",
    ),
}


ALIASES: dict[str, tuple[str, ...]] = {
    "infonce": ("nt_xent", "simclr"),  # SimCLR's NT-Xent (Chen et al. 2020)
    "pvc": ("poly_view", "polyview_contrastive"),
    "pwe": ("pairwise",),
    "supcon": ("supervised_contrastive",),
    "dclw": ("dcl_w",),
}
"""Other names the built-in losses answer to (the class names and any case already match)."""


@hookimpl
def manyview_register_losses(register: Any) -> None:
    for name, (factory, summary) in BUILTIN_LOSSES.items():
        register(name, factory, summary=summary, aliases=ALIASES.get(name, ()))
