"""Text encoders: open_clip's text tower (``open_clip_text``) and a learned bag of hashed
character n-grams (``char_ngram``)."""
