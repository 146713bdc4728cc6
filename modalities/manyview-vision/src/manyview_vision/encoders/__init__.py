"""Image encoders: any timm architecture, and a small CNN for tiny images."""

from manyview_vision.encoders.small_cnn import SmallCNN
from manyview_vision.encoders.timm_encoder import TimmEncoder, WeightsNotFoundError

__all__ = ["SmallCNN", "TimmEncoder", "WeightsNotFoundError"]
