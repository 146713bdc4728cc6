"""Optimizers (AdamW, SGD, LARS) and the warmup-then-decay learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer


class LARS(Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You, Gitman, Ginsburg 2017),
    as SimCLR and BYOL use it: each parameter's update is scaled by the trust ratio
    ``eta * ||w|| / (||g|| + wd * ||w||)``; biases and norm parameters (1-D tensors) get
    neither the adaptation nor weight decay.

    Args:
        params: parameters or groups.
        lr: learning rate.
        momentum: momentum (0.9).
        weight_decay: weight decay.
        trust_coefficient: eta (0.001).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if p.dim() > 1:
                    if group["weight_decay"]:
                        grad = grad.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(p), torch.norm(grad)
                    ratio = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        group["trust_coefficient"] * w_norm / g_norm,
                        torch.ones_like(w_norm),
                    )
                    grad = grad * ratio
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(grad).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def parameter_groups(params: Iterable[nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices and kernels only: biases and norm scales (1-D) are exempt."""
    decay, no_decay = [], []
    for p in params:
        (decay if p.dim() > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(spec: Mapping[str, Any], params: Iterable[nn.Parameter]) -> Optimizer:
    """The optimizer of an ``[optimizer]`` table."""
    groups = parameter_groups(params, spec["weight_decay"])
    name = spec["name"]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=spec["lr"], betas=tuple(spec["betas"]))
    if name == "sgd":
        return torch.optim.SGD(
            groups, lr=spec["lr"], momentum=spec["momentum"], nesterov=spec["nesterov"]
        )
    return LARS(
        groups,
        lr=spec["lr"],
        momentum=spec["momentum"],
        trust_coefficient=spec["trust_coefficient"],
    )


def lr_factor(step: int, total: int, warmup: int, kind: str, min_ratio: float) -> float:
    """Multiplier of the base learning rate at ``step``: linear warmup over ``warmup`` steps,
    then cosine, linear or constant decay to ``min_ratio`` at ``total``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if kind == "linear":
        return min_ratio + (1 - min_ratio) * (1 - progress)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(
    spec: Mapping[str, Any], optimizer: Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`lr_factor` (its state is checkpointed)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step, total_steps, spec["warmup_steps"], spec["kind"], spec["min_lr_ratio"]
        ),
    )
