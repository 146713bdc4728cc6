"""The open_clip text transformer as a manyview encoder: a list of strings in, features out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from manyview.encoders.attention import (
    MultiheadSelfAttention,
    check_backend,
    use_attention_backend,
    xformers_unavailable_reason,
)
from manyview_text._texts import example_sentences
from manyview_text.models import build_clip
from manyview_text.tokenizer import Tokenizer

__all__ = ["OpenCLIPText", "TransformerDropout"]


class TransformerDropout(nn.Module):
    """Dropout inside an open_clip transformer, which has none of its own.

    Installed with forward hooks, so the tower's modules and ``state_dict`` keys stay
    open_clip's: dropout on the transformer's input (token + positional embeddings) and on
    the output of every residual branch (attention and MLP), as BERT's hidden dropout
    (``hidden_dropout_prob``) that SimCSE uses; and open_clip's own attention-probability
    dropout set to ``attn_p``. Active in training mode only, like ``nn.Dropout``; the
    randomness comes from torch's global generator.

    Args:
        p: dropout probability on embeddings and residual branches.
        attn_p: dropout probability on the attention weights.
    """

    def __init__(self, p: float = 0.1, attn_p: float = 0.0) -> None:
        super().__init__()
        for name, value in (("dropout", p), ("attn_dropout", attn_p)):
            if not 0 <= value < 1:
                raise ValueError(f"open_clip_text: {name} must lie in [0, 1), got {value}")
        self.p, self.attn_p = float(p), float(attn_p)

    def install(self, transformer: nn.Module) -> None:
        """Hook into an open_clip ``Transformer`` (``tower.transformer``)."""
        if self.p:
            transformer.register_forward_pre_hook(self._before, with_kwargs=True)
        for block in transformer.resblocks:
            if self.p:
                block.ls_1.register_forward_hook(self._after)
                block.ls_2.register_forward_hook(self._after)
            if self.attn_p:
                attn = block.attn
                if isinstance(attn, (nn.MultiheadAttention, MultiheadSelfAttention)):
                    attn.dropout = self.attn_p
                else:  # open_clip's own Attention (custom blocks)
                    attn.attn_drop.p = self.attn_p

    # Bound methods, not closures: a deep copy of the encoder (an EMA teacher) then hooks the
    # copy's own TransformerDropout, whose train/eval mode follows the copy.
    def _before(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        x, *rest = args
        return (F.dropout(x, self.p, self.training), *rest), kwargs

    def _after(self, module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        return F.dropout(output, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, attn_p={self.attn_p}"


class OpenCLIPText(nn.Module):
    """open_clip's text transformer: a list of N strings to features (N, output_dim).

    The open_clip BPE tokenizer and the context length are handled inside: texts longer
    than the context are truncated with a warning (shown once). The features are the
    projected ``<end_of_text>`` token, as CLIP's ``encode_text``; with ``normalize=True``
    they are L2-normalised.

    Sizes: ``model`` picks a config (manyview-text's ``"tiny"`` default — width 64, 2 layers,
    4 heads, 32-token context, 64-d output, about 3.3 M parameters of which 3.2 M are the
    token embeddings — ``"small"``, any open_clip config name such as ``"ViT-B-32"``,
    ``"local-dir:<folder>"`` or a config dict), and the keyword overrides resize its text
    tower. Weights come from a local open_clip checkpoint only; nothing is downloaded.

    Dropout: open_clip's transformer has none; ``dropout`` adds it on embeddings and
    residual branches (and ``attn_dropout`` on attention weights). With dropout, two passes
    of the same sentences in training mode differ — SimCSE's augmentation (the ``simcse``
    view); in eval mode they agree.

    Attention: ``attention="sdpa"`` (default) keeps open_clip's ``nn.MultiheadAttention``,
    which runs torch's ``scaled_dot_product_attention``. ``attention="xformers"`` runs the
    tower's self-attention on xformers' memory-efficient attention (CUDA only, where xformers
    loads its CUDA extensions; see :mod:`manyview.encoders.attention`): each block's
    ``nn.MultiheadAttention`` is swapped for :class:`manyview.encoders.attention.MultiheadSelfAttention`
    with the same parameters, so checkpoints and ``state_dict`` keys do not change. Towers of
    open_clip's custom blocks (``qk_norm``, ``scaled_cosine_attn``, ...) are refused.

    Args:
        model (`str` or `dict`, defaults to ``"tiny"``): the CLIP config, see
            :func:`manyview_text.models.model_config`.
        checkpoint (`str`, *optional*): a local open_clip checkpoint of that config (only its
            text tower is used).
        context_length (`int`, *optional*): tokens per text (default: the config's).
        width, heads, layers (`int`, *optional*): text transformer sizes (default: the
            config's).
        embed_dim (`int`, *optional*): the output size (default: the config's).
        dropout (`float`, defaults to 0.0): hidden dropout (SimCSE: 0.1).
        attn_dropout (`float`, defaults to 0.0): attention-probability dropout.
        normalize (`bool`, defaults to `False`): L2-normalise the output.
        attention (`str`, defaults to ``"sdpa"``): the attention backend, ``"sdpa"`` or
            ``"xformers"`` (a ``ValueError`` says why when xformers cannot run here).
        text_cfg (`dict`, *optional*): any other ``open_clip.CLIPTextCfg`` overrides.

    Inputs: a list (or tuple) of N strings, or token ids ``(N, L)`` int64 with
    L <= ``context_length`` (from :attr:`tokenizer`). Output: ``(N, output_dim)`` float.

    Example::

        enc = manyview.create("encoder", "open_clip_text")           # tiny, random init
        enc = manyview.create("encoder", "open_clip_text", model="ViT-B-32",
                              checkpoint="/models/vit-b-32.safetensors")
        feats = enc(["a photo of the digit seven", "the spoken word three"])  # (2, 64)
    """

    def __init__(
        self,
        model: str | Mapping[str, Any] = "tiny",
        *,
        checkpoint: str | Path | None = None,
        context_length: int | None = None,
        width: int | None = None,
        heads: int | None = None,
        layers: int | None = None,
        embed_dim: int | None = None,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        normalize: bool = False,
        text_cfg: Mapping[str, Any] | None = None,
        attention: str = "sdpa",
    ) -> None:
        super().__init__()
        check_backend(attention, "open_clip_text: attention")
        overrides = dict(text_cfg or {})
        for key, value in (
            ("context_length", context_length),
            ("width", width),
            ("heads", heads),
            ("layers", layers),
        ):
            if value is not None:
                overrides[key] = value
        clip = build_clip(model, checkpoint=checkpoint, embed_dim=embed_dim, text_cfg=overrides)
        self._setup(clip.text, clip.manyview_config, dropout, attn_dropout, normalize, attention)

    @classmethod
    def from_clip(
        cls,
        clip: nn.Module,
        *,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        normalize: bool = False,
        attention: str = "sdpa",
    ) -> OpenCLIPText:
        """The text encoder of an existing ``open_clip.CustomTextCLIP`` (its ``text`` tower,
        shared, not copied: training the encoder trains ``clip``; ``attention="xformers"``
        swaps the attention modules of ``clip.text`` itself). See
        :func:`manyview_clip.open_clip_pair` (manyview-clip)."""
        check_backend(attention, "open_clip_text: attention")
        tower = getattr(clip, "text", None)
        if tower is None or not hasattr(tower, "token_embedding"):
            raise ValueError(
                "from_clip: expects an open_clip CustomTextCLIP with an open_clip text tower "
                "(clip.text); build one with manyview_text.build_clip or "
                "open_clip.create_model(..., force_custom_text=True)"
            )
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        cfg = getattr(clip, "manyview_config", {"text_cfg": {}})
        self._setup(tower, cfg, dropout, attn_dropout, normalize, attention)
        return self

    def _setup(
        self,
        tower: nn.Module,
        cfg: Mapping[str, Any],
        dropout: float,
        attn_dropout: float,
        normalize: bool,
        attention: str = "sdpa",
    ) -> None:
        if attention != "sdpa":
            _check_blocks(tower.transformer, attention)
        self.tower = tower
        self.dropout = TransformerDropout(dropout, attn_dropout)
        self.dropout.install(tower.transformer)
        if attention != "sdpa":
            use_attention_backend(tower.transformer, attention)
        self.attention = attention
        clean = dict(cfg["text_cfg"].get("tokenizer_kwargs") or {}).get("clean", "lower")
        self.tokenizer = Tokenizer(tower.context_length, clean=clean, who="open_clip_text")
        if tower.vocab_size != self.tokenizer.vocab_size:
            raise ValueError(
                f"open_clip_text: the text tower has {tower.vocab_size} token embeddings but "
                f"open_clip's BPE vocabulary has {self.tokenizer.vocab_size}"
            )
        self.normalize = bool(normalize)
        self.context_length: int = tower.context_length
        self.output_dim: int = (
            tower.output_dim if tower.text_projection is not None else tower.width
        )

    def tokenize(self, texts: Any) -> Tensor:
        """Token ids ``(N, context_length)`` of a list of strings (see :class:`Tokenizer`)."""
        return self.tokenizer(texts)

    def forward(self, texts: Any) -> Tensor:
        tokens = self._check_tokens(texts) if isinstance(texts, Tensor) else self.tokenizer(texts)
        tokens = tokens.to(self.tower.token_embedding.weight.device)
        out = self.tower(tokens)
        if isinstance(out, tuple):  # output_tokens=True towers return (pooled, tokens)
            out = out[0]
        return F.normalize(out, dim=-1) if self.normalize else out

    def _check_tokens(self, tokens: Tensor) -> Tensor:
        if tokens.is_floating_point() or tokens.dim() != 2 or tokens.shape[0] == 0:
            raise ValueError(
                f"open_clip_text: expects a list of strings or token ids (N, L) int64, got "
                f"{tokens.dtype} {tuple(tokens.shape)}"
            )
        if tokens.shape[1] > self.context_length:
            raise ValueError(
                f"open_clip_text: token ids of length {tokens.shape[1]} exceed the context "
                f"length {self.context_length}; tokenize with encoder.tokenize"
            )
        if tokens.shape[1] < self.context_length:
            tokens = F.pad(tokens, (0, self.context_length - tokens.shape[1]))
        return tokens.long()

    def example_inputs(self, n: int = 2) -> list[str]:
        """``n`` short English sentences (fixed: drawn from a seeded generator)."""
        return example_sentences(n, generator=torch.Generator().manual_seed(0))

    def extra_repr(self) -> str:
        return (
            f"context_length={self.context_length}, output_dim={self.output_dim}, "
            f"normalize={self.normalize}, attention={self.attention!r}"
        )


def _check_blocks(transformer: nn.Module, attention: str) -> None:
    """A ``ValueError`` unless ``attention`` can run every block of an open_clip
    ``Transformer``: xformers must be usable here, and the blocks must be open_clip's default
    ``ResidualAttentionBlock`` (``nn.MultiheadAttention``)."""
    if attention == "xformers":
        reason = xformers_unavailable_reason()
        if reason is not None:
            raise ValueError(
                f"open_clip_text: attention='xformers' is unavailable: {reason}. "
                "Use attention='sdpa' (torch's scaled_dot_product_attention, the default)."
            )
    blocks = list(getattr(transformer, "resblocks", []))
    kinds = (nn.MultiheadAttention, MultiheadSelfAttention)
    custom = [b for b in blocks if not isinstance(getattr(b, "attn", None), kinds)]
    if not blocks or custom:
        raise ValueError(
            f"open_clip_text: attention={attention!r} needs open_clip's default transformer "
            "blocks (nn.MultiheadAttention); this tower has "
            f"{type(custom[0]).__name__ if custom else 'no blocks'} (open_clip's own Attention "
            "for qk_norm, scaled_cosine_attn, scale_heads, ...). Use attention='sdpa'."
        )
