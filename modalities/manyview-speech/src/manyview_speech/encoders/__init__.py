"""Encoders of speech (log-mel CNN / transformer, wav2vec2, HuBERT) and a small text encoder
for audio-text training."""
