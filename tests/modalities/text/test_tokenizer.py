"""The tokenizer: offline, open_clip's ids exactly, truncation that warns once, bad input."""

from __future__ import annotations

import socket
import warnings

import open_clip
import pytest
import torch

from manyview_text import tokenizer as tokenizer_module
from manyview_text.tokenizer import Tokenizer


def test_tokenizes_offline(monkeypatch):
    """The BPE vocabulary ships inside open_clip: no socket is ever opened."""

    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    tokenizer_module._bpe.cache_clear()
    ids = Tokenizer(16)(["a photo of the digit seven"])
    assert ids.shape == (1, 16) and ids.dtype == torch.long
    assert ids[0, 0] == open_clip.SimpleTokenizer().sot_token_id


def test_same_ids_as_open_clip():
    texts = ["a photo of the digit seven", "The spoken word THREE!", "", "x " * 40]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = Tokenizer(24)(texts)
    assert torch.equal(ours, open_clip.tokenize(texts, context_length=24))


def test_layout_start_end_padding():
    tok = Tokenizer(12)
    ids = tok(["seven"])[0]
    n = int((ids != 0).sum())
    assert ids[0] == tok.sot_token_id and ids[n - 1] == tok.eot_token_id
    assert (ids[n:] == 0).all()
    assert tok.decode(ids) == "seven"


def test_long_text_is_truncated_with_one_warning():
    tok = Tokenizer(8)
    long = "one two three four five six seven eight nine ten"
    with pytest.warns(UserWarning, match="truncated") as record:
        ids = tok([long, "short"])
    assert len(record) == 1 and "1 of 2 texts" in str(record[0].message)
    assert ids.shape == (2, 8)
    assert ids[0, -1] == tok.eot_token_id  # open_clip's truncation: the last kept token is EOT
    assert tok.decode(ids[0]) == "one two three four five six"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second truncation does not warn again
        tok([long])
    assert tok.truncated == 2


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([], "empty list"),
        ("one string", "wrap it"),
        (["ok", 3], "item 1 is a int"),
        (["ok", None], "item 1 is a NoneType"),
        (torch.zeros(2), "list of strings"),
    ],
)
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        Tokenizer(8)(bad)


def test_bad_settings():
    with pytest.raises(ValueError, match="context_length"):
        Tokenizer(1)
    with pytest.raises(ValueError, match="clean"):
        Tokenizer(8, clean="upper")
