"""Views of text batches: lists of strings in, lists of strings out, seeded.

Each view draws its per-sample randomness from the ``torch.Generator`` it is given, so a
batch's views are a function of the batch and the generator's state. Words are the
whitespace-separated pieces of a text (runs of whitespace become one space in the output).
One module per registered view:

- ``simcse``: the sentences unchanged; the encoder's dropout is the augmentation (SimCSE).
- ``token_mask``: each word replaced by a mask token with probability ``p``.
- ``word_deletion``: each word deleted with probability ``p`` (one word always kept; EDA).
- ``span_swap``: two non-overlapping spans of words swapped (EDA's random swap, for spans).
"""

from manyview_text.views.simcse import SimCSE
from manyview_text.views.span_swap import SpanSwap
from manyview_text.views.token_mask import TokenMask
from manyview_text.views.word_deletion import WordDeletion

__all__ = ["SimCSE", "SpanSwap", "TokenMask", "WordDeletion"]
