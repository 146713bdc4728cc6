"""manyview-text: the manyview modality plugin for text: the open_clip tokenizer and text tower, text views, prompts."""

__version__ = "0.1.0"
