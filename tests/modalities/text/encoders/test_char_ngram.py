"""char_ngram: a learned bag of hashed character n-grams of short texts (manyview-text), the
default text encoder of manyview-speech's audio_text recipe."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing import check_encoder
from manyview_text.encoders.char_ngram import CharNgramEncoder


def test_registered_by_the_text_plugin_and_passes_the_contract():
    entry = manyview.entry("encoder", "char_ngram")
    assert entry.plugin == "manyview-text" and entry.modality == "text"
    check_encoder(manyview.create("encoder", "char_ngram"))


def test_char_ngram_text_encoder():
    enc = CharNgramEncoder(output_dim=16)
    out = enc(["seven", "seven", "eleven", ""])
    assert out.shape == (4, 16) and torch.equal(out[0], out[1]) and not torch.equal(out[0], out[2])
    assert torch.equal(enc(["Seven"]), enc(["seven"]))
    with pytest.raises(ValueError, match="list of strings"):
        enc("seven")
    with pytest.raises(ValueError, match="must be a string"):
        enc(["seven", 7])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"output_dim": 0}, "output_dim must be a positive int"),
        ({"buckets": True}, "buckets must be a positive int"),
        ({"ngrams": (0, 2)}, "ngrams must be positive lengths"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CharNgramEncoder(**kwargs)
