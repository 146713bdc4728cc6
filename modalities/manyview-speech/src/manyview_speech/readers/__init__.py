"""Readers of speech and audio files (registered as the ``audio`` reader)."""
