"""manyview-speech: the manyview modality plugin for speech and audio: soundfile IO, torchaudio features, batched speech views, encoders."""

__version__ = "0.1.0"
