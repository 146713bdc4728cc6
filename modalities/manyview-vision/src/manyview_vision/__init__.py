"""manyview-vision: the manyview modality plugin for images: timm encoders and batched, seeded image views."""

__version__ = "0.1.0"
