"""Encoders of speech: log-mel CNN / transformer, wav2vec2, HuBERT."""
