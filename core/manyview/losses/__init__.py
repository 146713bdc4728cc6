"""manyview's losses. Build them by name with ``manyview.create("loss", name, ...)``, or
import the classes from here."""

from manyview.losses.base import (
    MultiViewLoss,
    NonFiniteInputError,
    check_device,
    check_generator,
    check_temperature,
)
from manyview.losses.clip import CLIPLoss
from manyview.losses.dcl import DCL, DCLW
from manyview.losses.dhel import DHEL, MVDHEL
from manyview.losses.infonce import InfoNCE
from manyview.losses.isogclr import ISogCLR
from manyview.losses.keywords import UnexpectedInputError
from manyview.losses.mv_infonce import MVInfoNCE
from manyview.losses.pvc import PolyViewContrastive
from manyview.losses.pwe import PairwiseLoss
from manyview.losses.siglip import SigLIPLoss
from manyview.losses.supcon import SupCon
from manyview.losses.supremix import SupReMix

__all__ = [
    "DCL",
    "DCLW",
    "DHEL",
    "MVDHEL",
    "CLIPLoss",
    "ISogCLR",
    "InfoNCE",
    "MVInfoNCE",
    "MultiViewLoss",
    "NonFiniteInputError",
    "PairwiseLoss",
    "PolyViewContrastive",
    "SigLIPLoss",
    "SupCon",
    "SupReMix",
    "UnexpectedInputError",
    "check_device",
    "check_generator",
    "check_temperature",
]
