"""DDAE++ self-conditioning: a diffusion network's bottleneck features, pooled and mapped by
a small MLP, are added to the time embedding of the blocks after the bottleneck (Xiang et
al., "Enhancing Diffusion Models Towards Unified Generative and Discriminative Learning",
arXiv 2505.10999: "aggregating and rerouting intermediate features to guide subsequent
decoding layers"). No official code is public; every unknown is an option:

    u = γ(e_t) ⊙ MLP(Pool(h_b(x_t)))     e′ = e_t + u in the decoder blocks after b

- ``gate="none"``: γ = 1; ``"learned"``: γ = 1 + Linear(SiLU(e_t)), the Linear
  zero-initialised (a per-channel, time-adaptive scale).
- ``zero_init_last=True``: the MLP's last layer is zero, so at initialisation the wrapped
  network computes exactly the baseline's output.
- ``stop_grad=True``: Pool(h_b) is detached (no gradient from u into the encoder).

How the embedding reaches the blocks (diffusers 0.42):

- ``UNet2DModel`` calls its mid block as ``(sample, emb)`` and its up blocks as
  ``(sample, res_samples, emb)``: positionally. A forward pre-hook (``with_kwargs``)
  replaces the argument named ``temb`` in the block's signature, positional or keyword
  (``UNet2DConditionModel`` passes it as ``temb=``).
- ``DiTTransformer2DModel``: each block computes its embedding in ``norm1.emb``; a forward
  hook adds u to it in the blocks after b. The output layer calls block 0's ``norm1.emb``
  a second time after the blocks: that second call gets u too (the output layer is after
  b), the first one does not.

The hooks live for one forward call and are removed when it returns or raises.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor, nn

from manyview.options import check_choice, check_int
from manyview_diffusion.networks import unwrap_network
from manyview_diffusion.taps import pool_features, resolve_module

__all__ = ["SelfConditioned", "mlp_overhead"]


def _order(network: nn.Module) -> list[str]:
    """The top-level blocks of a diffusers UNet in the order its forward runs them."""
    names = [f"down_blocks.{i}" for i in range(len(network.down_blocks))]
    if getattr(network, "mid_block", None) is not None:
        names.append("mid_block")
    return names + [f"up_blocks.{i}" for i in range(len(network.up_blocks))]


def _temb_index(block: nn.Module) -> int | None:
    """The positional index of ``temb`` in ``block.forward`` (without ``self``)."""
    params = list(inspect.signature(block.forward).parameters)
    return params.index("temb") if "temb" in params else None


class SelfConditioned(nn.Module):
    """A diffusers ``UNet2DModel``, ``UNet2DConditionModel`` or ``DiTTransformer2DModel``
    whose blocks after ``source`` see the time embedding plus u (module docstring).

    Args:
        network: the diffusers model (wrapped, not copied), or a wrapper of one (e.g.
            :class:`~manyview_diffusion.augment.AugmentConditioned`; either order works:
            the hooks go on the diffusers model, the call goes through ``network``).
        source (`str`, *optional*): the bottleneck block; default ``mid_block`` for UNets and
            the middle block ``transformer_blocks.{L // 2 - 1}`` for a DiT (0-based).
        hidden (`int`, *optional*): the MLP's hidden width; default the embedding width.
        gate (`str`, defaults to ``"none"``): or ``"learned"``.
        zero_init_last (`bool`, defaults to `True`), stop_grad (`bool`, defaults to
            `False`): see the module docstring.
        inject (`str`, defaults to ``"decoder"``): which blocks after ``source`` get u:
            ``"decoder"`` — the mid block and the up blocks of a UNet (its down blocks, the
            encoder, keep e_t), every later block of a DiT; ``"all_after"`` — every
            top-level block after ``source``, down blocks included.

    ``forward`` takes and returns what the network does.
    """

    who = "self_conditioned"

    def __init__(
        self,
        network: nn.Module,
        *,
        source: str | None = None,
        hidden: int | None = None,
        gate: str = "none",
        zero_init_last: bool = True,
        stop_grad: bool = False,
        inject: str = "decoder",
    ) -> None:
        super().__init__()
        who = self.who
        self.network = network
        network = unwrap_network(network)
        kind = type(network).__name__
        self.is_dit = hasattr(network, "transformer_blocks")
        if self.is_dit:
            layers = len(network.transformer_blocks)
            source = source or f"transformer_blocks.{max(layers // 2 - 1, 0)}"
            order = [f"transformer_blocks.{i}" for i in range(layers)]
            emb_dim = int(network.config.num_attention_heads * network.config.attention_head_dim)
            src_dim = emb_dim
        elif hasattr(network, "up_blocks") and hasattr(network, "time_embedding"):
            source = source or "mid_block"
            order = _order(network)
            emb_dim = int(network.time_embedding.linear_2.out_features)
            src_dim = 0
        else:
            raise ValueError(
                f"{who}: wraps a diffusers UNet2DModel, UNet2DConditionModel or "
                f"DiTTransformer2DModel, got {kind}"
            )
        resolve_module(network, source, who=who)
        if source not in order:
            raise ValueError(
                f"{who}: source must be one of the top-level blocks {', '.join(order)}, got "
                f"{source!r}"
            )
        self.source = source
        self.inject = check_choice(inject, ("decoder", "all_after"), "inject", who)
        self.after = order[order.index(source) + 1 :]
        if self.inject == "decoder":  # the encoder (down) blocks keep e_t
            self.after = [b for b in self.after if not b.startswith("down_blocks.")]
        if not self.after and not self.is_dit:
            raise ValueError(f"{who}: no block runs after source {source!r}: pick an earlier one")
        if not src_dim:
            src_dim = self._probe_channels(network, source)
        hidden = emb_dim if hidden is None else check_int(hidden, "hidden", who)
        self.gate_kind = check_choice(gate, ("none", "learned"), "gate", who)
        self.stop_grad = bool(stop_grad)
        self.mlp = nn.Sequential(nn.Linear(src_dim, hidden), nn.SiLU(), nn.Linear(hidden, emb_dim))
        if zero_init_last:
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)
        self.gate = None
        if self.gate_kind == "learned":
            self.gate = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, emb_dim))
            nn.init.zeros_(self.gate[-1].weight)
            nn.init.zeros_(self.gate[-1].bias)
        self.injections = 0  # embeddings changed in the last forward (a diagnostic)

    @staticmethod
    def _probe_channels(network: nn.Module, source: str) -> int:
        block = resolve_module(network, source, who="self_conditioned")
        if source == "mid_block":
            return int(network.config.block_out_channels[-1])
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        return int(convs[-1].out_channels)

    @property
    def config(self) -> Any:
        """The wrapped network's diffusers config."""
        return unwrap_network(self.network).config

    def _u(self, pooled: Tensor, emb: Tensor) -> Tensor:
        u = self.mlp(pooled.to(emb.dtype))
        if self.gate is not None:
            u = u * (1 + self.gate(emb))
        return u

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        state: dict[str, Any] = {}
        handles = []
        self.injections = 0

        def grab(module: nn.Module, inputs: Any, output: Any) -> None:
            h = output[0] if isinstance(output, tuple) else output
            h = pool_features(h, "auto", who=self.who)
            state["h"] = h.detach() if self.stop_grad else h

        def add(emb: Tensor) -> Tensor:
            if "h" not in state:
                raise RuntimeError(f"{self.who}: a block after {self.source!r} ran before it")
            self.injections += 1
            return emb + self._u(state["h"], emb)

        base = unwrap_network(self.network)
        modules = dict(base.named_modules())
        handles.append(modules[self.source].register_forward_hook(grab))
        if self.is_dit:
            blocks = base.transformer_blocks
            first = int(self.source.rsplit(".", 1)[1])
            calls = {"n": 0}

            def emb_hook(module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
                return add(output)

            def final_hook(module: nn.Module, inputs: Any, output: Tensor) -> Tensor | None:
                calls["n"] += 1  # call 1: block 0 itself; call 2: the output layer
                return add(output) if calls["n"] == 2 else None

            for i in range(first + 1, len(blocks)):
                handles.append(blocks[i].norm1.emb.register_forward_hook(emb_hook))
            handles.append(blocks[0].norm1.emb.register_forward_hook(final_hook))
        else:
            for name in self.after:
                block = modules[name]
                index = _temb_index(block)

                def pre(
                    module: nn.Module,
                    a: tuple,
                    kw: dict,
                    index: int | None = index,
                    name: str = name,
                ) -> Any:
                    if "temb" in kw and kw["temb"] is not None:
                        return a, {**kw, "temb": add(kw["temb"])}
                    if index is not None and len(a) > index and a[index] is not None:
                        return (*a[:index], add(a[index]), *a[index + 1 :]), kw
                    raise RuntimeError(f"{self.who}: {name} was called without a time embedding")

                handles.append(block.register_forward_pre_hook(pre, with_kwargs=True))
        try:
            return self.network(*args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()


def mlp_overhead(model: SelfConditioned) -> tuple[int, int, float]:
    """(parameters the wrapper adds, the diffusers network's parameters, added / network)."""
    own = {id(p) for p in unwrap_network(model.network).parameters()}
    added = sum(p.numel() for p in model.parameters() if id(p) not in own)
    base = sum(p.numel() for p in unwrap_network(model.network).parameters())
    return added, base, added / base
