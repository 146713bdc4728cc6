"""A fake image generator recipe, wrapped in a ``manyview.runs.Run``, for the tests of the
``generation`` suite."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from manyview.runs import Run

DIGITS16 = {"name": "digits", "options": {"size": 16}}


class FakeGenerator(nn.Module):
    """An image generator recipe (the ``ImageGenerator`` protocol) for the generation tests:
    real held-out digits of the requested classes blended with uniform noise, the noise's
    share ``1 / (1 + strength * steps)`` — pure noise at ``strength = 0`` (its initial
    weights, the random-init baseline), closer to the data with more steps and a larger
    ``strength``. ``perfect=True`` returns the real images themselves. Every call's size,
    mode and gradient state is recorded in ``calls``."""

    def __init__(self, strength: float = 0.0, *, num_classes: int | None = 10, perfect=False):
        from manyview.datasets.digits import Digits

        super().__init__()
        self.model = nn.Module()
        self.model.strength = nn.Parameter(torch.tensor(float(strength)))
        self.sample_steps = 16
        self.num_classes = num_classes
        self.perfect = perfect
        real = Digits("test", size=16)
        order = torch.argsort(real.labels, stable=True)
        self.images, self.labels = real.images[order], real.labels[order]
        self.counts = torch.bincount(self.labels, minlength=10)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.calls: list[dict] = []

    def sample(self, n, *, steps=None, labels=None, generator=None):
        steps = self.sample_steps if steps is None else steps
        self.calls.append(
            {"n": n, "steps": steps, "training": self.training, "grad": torch.is_grad_enabled()}
        )
        if labels is None:
            labels = torch.randint(10, (n,), generator=generator)
        u = torch.rand(n, generator=generator)
        idx = self.starts[labels] + (u * self.counts[labels]).long()
        real = self.images[idx]
        if self.perfect:
            return real.clone()
        w = 1.0 / (1.0 + float(self.model.strength) * steps)
        return (1.0 - w) * real + w * torch.rand(real.shape, generator=generator)


def generator_run(tmp_path: Path, strength: float = 4.0, **options) -> Run:
    """A :class:`Run` of a :class:`FakeGenerator` on 16x16 digits at ``strength``, its
    initial weights those of ``strength = 0`` (pure noise: the random-init baseline)."""
    recipe = FakeGenerator(0.0, **options)
    initial = {k: v.detach().clone() for k, v in recipe.model.state_dict().items()}
    recipe.model.strength.data.fill_(strength)
    config = {"run": {"seed": 0}, "data": DIGITS16}
    return Run(recipe, config, Path(tmp_path) / "fake-run", None, initial)
