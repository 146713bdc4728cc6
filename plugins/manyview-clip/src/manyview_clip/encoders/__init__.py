"""CLIP's image tower as a manyview encoder (``open_clip_image``)."""
