"""manyview-speech: the manyview modality plugin for speech and audio: soundfile IO,
torchaudio features, batched speech views, encoders, offline speech synthesis, recipes.

Importing the package imports nothing heavy; the submodules load torch and torchaudio.
"""

__version__ = "0.1.0"
