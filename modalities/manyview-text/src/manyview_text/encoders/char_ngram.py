"""A small learned text encoder over hashed character n-grams, for audio-text training
without a tokenizer (fastText-style subword bags)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from manyview.options import check_ints


class CharNgramEncoder(nn.Module):
    """Texts to ``(N, output_dim)``: the mean of learned embeddings of the text's hashed
    character n-grams (of ``"<" + text + ">"``), then LayerNorm and a linear layer.

    Enough for short texts such as words and labels (the spoken-word datasets); for captions
    use a real text tower (``open_clip_text``). Hashing is stable (CRC32), so a trained model
    keeps its meaning across processes.

    Args:
        output_dim: feature size (``output_dim`` attribute).
        embed_dim: n-gram embedding size.
        buckets: hash buckets (rows of the embedding table).
        ngrams: the n-gram lengths.
        lowercase: lower-case the texts first.

    Inputs: a list (or tuple) of N strings.
    """

    def __init__(
        self,
        output_dim: int = 64,
        embed_dim: int = 64,
        buckets: int = 4096,
        ngrams: Sequence[int] = (1, 2, 3),
        lowercase: bool = True,
    ) -> None:
        super().__init__()
        check_ints("char_ngram", output_dim=output_dim, embed_dim=embed_dim, buckets=buckets)
        self.ngrams = tuple(int(n) for n in ngrams)
        if not self.ngrams or min(self.ngrams) < 1:
            raise ValueError(f"char_ngram: ngrams must be positive lengths, got {ngrams}")
        self.bag = nn.EmbeddingBag(buckets, embed_dim, mode="mean")
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, output_dim))
        self.buckets, self.lowercase, self.output_dim = buckets, bool(lowercase), output_dim
        self._cache: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int]:
        """The bucket ids of one text's n-grams."""
        found = self._cache.get(text)
        if found is None:
            s = f"<{text.lower() if self.lowercase else text}>"
            grams = [s[i : i + n] for n in self.ngrams for i in range(max(1, len(s) - n + 1))]
            found = [zlib.crc32(g.encode()) % self.buckets for g in grams]
            if len(self._cache) < 100_000:
                self._cache[text] = found
        return found

    def forward(self, texts: Sequence[str]) -> Tensor:
        if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
            raise ValueError(
                f"char_ngram: expects a non-empty list of strings, got {type(texts).__name__}"
            )
        if not all(isinstance(t, str) for t in texts):
            bad = next(t for t in texts if not isinstance(t, str))
            raise ValueError(f"char_ngram: every text must be a string, got {type(bad).__name__}")
        ids = [self.ids(t) for t in texts]
        device = self.bag.weight.device
        flat = torch.tensor([i for row in ids for i in row], dtype=torch.long, device=device)
        offsets = torch.tensor([0] + [len(row) for row in ids[:-1]], device=device).cumsum(0)
        return self.head(self.bag(flat, offsets))

    def example_inputs(self, n: int = 2) -> list[str]:
        words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        return [words[i % len(words)] for i in range(n)]
