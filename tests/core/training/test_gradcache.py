"""GradCache (Gao, Zhang, Han, Callan 2021, arXiv 2101.06983) gives the gradients of the
direct computation to float64 precision, for any loss, any number of views and encoders."""

from __future__ import annotations

import contextlib
import copy
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import manyview
from manyview.training.gradcache import GradCache

ROOT = Path(__file__).resolve().parents[3]
F64 = {"rtol": 1e-10, "atol": 1e-12}


# --------------------------------------------------------------------------- models


def mlp(d_in: int = 6, d_out: int = 4, dropout: float = 0.0, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(d_in, 8), nn.Dropout(dropout), nn.Tanh(), nn.Linear(8, d_out)
    ).double()


class ImageEncoder(nn.Module):
    """(N, 1, 5, 5) images -> (N, D)."""

    def __init__(self, d_out: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.head = nn.Linear(3, d_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


class TextEncoder(nn.Module):
    """A list of strings -> (N, D) (a bag of character embeddings)."""

    def __init__(self, d_out: int = 4) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(32, d_out, mode="mean")

    def forward(self, texts: list[str]) -> Tensor:
        ids = [torch.tensor([ord(c) % 32 for c in t]) for t in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return self.embed(torch.cat(ids), offsets)


class DictEncoder(nn.Module):
    """{"x": (N, 6), "scale": (N, 1)} -> (N, D)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(seed=5)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.net(batch["x"]) * batch["scale"]


def direct(
    encoders: Sequence[Callable[[Any], Tensor]],
    loss_fn: Callable[..., Tensor],
    inputs: Sequence[Any],
    chunk_size: int | None = None,
    stack: bool = True,
    **kwargs: Any,
) -> Tensor:
    """The reference: encode with grad (view after view, chunk after chunk), loss, backward."""
    reps = []
    for v, x in enumerate(inputs):
        n = len(x) if not isinstance(x, dict) else len(next(iter(x.values())))
        size = chunk_size or n
        enc = encoders[v] if len(encoders) > 1 else encoders[0]
        parts = []
        for s in range(0, n, size):
            part = {k: t[s : s + size] for k, t in x.items()} if isinstance(x, dict) else x
            parts.append(enc(part if isinstance(x, dict) else x[s : s + size]))
        reps.append(torch.cat(parts))
    loss = loss_fn(torch.stack(reps, 1) if stack else reps, **kwargs)
    loss.backward()
    return loss.detach()


def grads(*modules: nn.Module) -> list[Tensor]:
    return [p.grad.clone() for m in modules for p in m.parameters() if p.requires_grad]


def data(*shape: int, seed: int = 1) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def assert_same(a: list[Tensor], b: list[Tensor], **tol: float) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, **(tol or F64))


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 10, 64])
def test_shared_encoder_with_dropout(chunk_size: int):
    """Two views through one MLP with dropout: the saved RNG states replay every mask."""
    loss_fn = manyview.create("loss", "infonce", temperature=0.5)
    x1, x2 = data(10, 6, seed=1), data(10, 6, seed=2)
    enc = mlp(dropout=0.3)
    ref = copy.deepcopy(enc)

    torch.manual_seed(7)
    expected = direct([ref], loss_fn, [x1, x2], chunk_size=chunk_size)
    rng_after_direct = torch.get_rng_state()
    torch.manual_seed(7)
    loss = GradCache(enc, loss_fn, chunk_size=chunk_size).step([x1, x2])

    torch.testing.assert_close(loss, expected, **F64)
    assert loss.dim() == 0 and not loss.requires_grad
    assert_same(grads(enc), grads(ref))
    assert torch.equal(torch.get_rng_state(), rng_after_direct)  # the generator is where the
    # direct computation leaves it, so the next step draws the same numbers


def test_chunk_at_least_n_is_the_plain_full_batch_computation():
    loss_fn = manyview.create("loss", "infonce", temperature=0.5)
    x1, x2 = data(6, 6, seed=1), data(6, 6, seed=2)
    enc = mlp(dropout=0.3)
    ref = copy.deepcopy(enc)
    torch.manual_seed(3)
    expected = loss_fn(torch.stack([ref(x1), ref(x2)], 1))
    expected.backward()
    torch.manual_seed(3)
    loss = GradCache([enc], loss_fn, chunk_size=6).step([x1, x2])
    torch.testing.assert_close(loss, expected.detach(), **F64)
    assert_same(grads(enc), grads(ref))


@pytest.mark.parametrize("chunk_size", [2, 3, 7])
def test_three_views_two_encoders(chunk_size: int):
    """Two image views through a conv net and one vector view through an MLP, against the
    unchunked full batch (no randomness: chunking changes nothing)."""
    torch.manual_seed(0)
    image, vector = ImageEncoder().double(), mlp(d_in=5, seed=1)
    ref_image, ref_vector = copy.deepcopy(image), copy.deepcopy(vector)
    loss_fn = manyview.create("loss", "mv_infonce", temperature=0.3)
    inputs = [data(7, 1, 5, 5, seed=1), data(7, 1, 5, 5, seed=2), data(7, 5, seed=3)]

    expected = direct([ref_image, ref_image, ref_vector], loss_fn, inputs)
    gc = GradCache([image, image, vector], loss_fn, chunk_size=chunk_size)
    loss = gc.step(inputs)

    torch.testing.assert_close(loss, expected, **F64)
    assert_same(grads(image, vector), grads(ref_image, ref_vector))


def test_loss_with_labels_supcon():
    loss_fn = manyview.create("loss", "supcon", temperature=0.2)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3, 3])
    x1, x2 = data(10, 6, seed=1), data(10, 6, seed=2)
    enc = mlp(dropout=0.2)
    ref = copy.deepcopy(enc)
    torch.manual_seed(1)
    expected = direct([ref], loss_fn, [x1, x2], chunk_size=3, labels=labels)
    torch.manual_seed(1)
    loss = GradCache(enc, loss_fn, chunk_size=3).step([x1, x2], labels=labels)
    torch.testing.assert_close(loss, expected, **F64)
    assert_same(grads(enc), grads(ref))


@pytest.mark.parametrize("stack", [True, False])
def test_learnable_loss_parameter_clip_with_text(stack: bool):
    """CLIP between images and strings; the learnable logit scale gets its gradient too."""
    torch.manual_seed(0)
    image, text = ImageEncoder().double(), TextEncoder().double()
    loss_fn = manyview.create("loss", "clip", learnable=True).double()
    ref_image, ref_text, ref_loss = (copy.deepcopy(m) for m in (image, text, loss_fn))
    images = data(9, 1, 5, 5)
    texts = ["a cat", "dog", "two birds", "x", "a red car", "sea", "night sky", "tree", "ok"]

    expected = direct([ref_image, ref_text], ref_loss, [images, texts], stack=stack)
    loss = GradCache([image, text], loss_fn, chunk_size=4, stack=stack).step([images, texts])

    torch.testing.assert_close(loss, expected, **F64)
    assert loss_fn.logit_scale.grad is not None
    assert_same(grads(image, text, loss_fn), grads(ref_image, ref_text, ref_loss))


def test_dict_inputs():
    enc = DictEncoder()
    ref = copy.deepcopy(enc)
    loss_fn = manyview.create("loss", "infonce")
    batch = {"x": data(8, 6, seed=1), "scale": data(8, 1, seed=2).abs() + 0.5}
    other = {"x": data(8, 6, seed=3), "scale": data(8, 1, seed=4).abs() + 0.5}
    expected = direct([ref], loss_fn, [batch, other])
    loss = GradCache(enc, loss_fn, chunk_size=3).step([batch, other])
    torch.testing.assert_close(loss, expected, **F64)
    assert_same(grads(enc), grads(ref))


def test_gradients_accumulate_over_steps_like_backward():
    loss_fn = manyview.create("loss", "infonce")
    a = [data(8, 6, seed=1), data(8, 6, seed=2)]
    b = [data(8, 6, seed=3), data(8, 6, seed=4)]
    enc = mlp()
    ref = copy.deepcopy(enc)
    direct([ref], loss_fn, a)
    direct([ref], loss_fn, b)
    gc = GradCache(enc, loss_fn, chunk_size=3)
    gc.step(a)
    gc.step(b)
    assert_same(grads(enc), grads(ref))


def test_stateful_module_replays_exactly():
    """Spectral norm updates its power-iteration buffers in every training forward:
    restoring the buffers after the no-grad pass makes the re-forward identical."""
    torch.manual_seed(0)
    enc = nn.Sequential(
        nn.utils.parametrizations.spectral_norm(nn.Linear(6, 8)), nn.Tanh(), nn.Linear(8, 4)
    ).double()
    ref = copy.deepcopy(enc)
    loss_fn = manyview.create("loss", "infonce")
    inputs = [data(8, 6, seed=1), data(8, 6, seed=2)]
    expected = direct([ref], loss_fn, inputs, chunk_size=3)
    loss = GradCache(enc, loss_fn, chunk_size=3, check_replay=True).step(inputs)
    torch.testing.assert_close(loss, expected, **F64)
    assert_same(grads(enc), grads(ref))
    for b, rb in zip(enc.buffers(), ref.buffers(), strict=True):
        torch.testing.assert_close(b, rb, **F64)


class OwnGenerator(nn.Module):
    """Noise from a generator of its own (not torch's default one)."""

    def __init__(self, generator: torch.Generator) -> None:
        super().__init__()
        self.net, self.generator = mlp(), generator

    def forward(self, x: Tensor) -> Tensor:
        noise = torch.randn(x.shape, generator=self.generator, dtype=x.dtype)
        return self.net(x + 0.1 * noise)


def test_extra_generators_are_replayed_and_check_replay_catches_them():
    loss_fn = manyview.create("loss", "infonce")
    inputs = [data(6, 6, seed=1), data(6, 6, seed=2)]
    gen = torch.Generator().manual_seed(0)
    enc = OwnGenerator(gen)
    with pytest.raises(RuntimeError, match="generators="):
        GradCache(enc, loss_fn, chunk_size=4, check_replay=True).step(inputs)

    ref = OwnGenerator(torch.Generator().manual_seed(0))
    ref.net.load_state_dict(enc.net.state_dict())
    enc.zero_grad(set_to_none=True)
    gen.manual_seed(0)
    expected = direct([ref], loss_fn, inputs, chunk_size=4)
    loss = GradCache(enc, loss_fn, chunk_size=4, generators=[gen], check_replay=True).step(inputs)
    torch.testing.assert_close(loss, expected, **F64)
    assert_same(grads(enc), grads(ref))
    assert torch.equal(gen.get_state(), ref.generator.get_state())


def test_grad_scaler_scales_every_gradient():
    loss_fn = manyview.create("loss", "infonce")
    inputs = [data(6, 6, seed=1), data(6, 6, seed=2)]
    enc = mlp()
    ref = copy.deepcopy(enc)
    direct([ref], loss_fn, inputs)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    GradCache(enc, loss_fn, chunk_size=4, scaler=scaler).step(inputs)
    assert_same(grads(enc), [8.0 * g for g in grads(ref)], rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------- BatchNorm


def bn_encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 4)).double()


@pytest.mark.parametrize("mode", ["all", "norm"])
def test_batchnorm_stats_update_once_per_chunk(mode: str):
    enc = bn_encoder()
    ref = copy.deepcopy(enc)
    loss_fn = manyview.create("loss", "infonce")
    inputs = [data(8, 6, seed=1), data(8, 6, seed=2)]
    expected = direct([ref], loss_fn, inputs, chunk_size=3)  # 2 views x 3 chunks
    loss = GradCache(enc, loss_fn, chunk_size=3, restore_buffers=mode).step(inputs)
    torch.testing.assert_close(loss, expected, **F64)
    assert_same(grads(enc), grads(ref))
    bn, ref_bn = enc[1], ref[1]
    assert int(bn.num_batches_tracked) == int(ref_bn.num_batches_tracked) == 6
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean, **F64)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var, **F64)


def test_batchnorm_without_restore_updates_twice():
    enc = bn_encoder()
    inputs = [data(8, 6, seed=1), data(8, 6, seed=2)]
    GradCache(enc, manyview.create("loss", "infonce"), chunk_size=3, restore_buffers="none").step(
        inputs
    )
    assert int(enc[1].num_batches_tracked) == 12


# --------------------------------------------------------------------------- DDP


class FakeDDP(nn.Module):
    """Records whether each forward and backward ran inside ``no_sync()``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module, self.sync, self.log = module, True, []

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        old, self.sync = self.sync, False
        try:
            yield
        finally:
            self.sync = old

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            self.log.append(self.sync)
        return self.module(x)


def test_no_sync_for_all_but_each_encoders_last_chunk():
    a, b = FakeDDP(mlp(seed=0)), FakeDDP(mlp(seed=1))
    inputs = [data(5, 6, seed=1), data(5, 6, seed=2), data(5, 6, seed=3)]
    GradCache([a, a, b], manyview.create("loss", "mv_infonce"), chunk_size=2).step(inputs)
    assert a.log == [False] * 5 + [True]  # 2 views x 3 chunks
    assert b.log == [False, False, True]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("size", [0, -2, 2.5, True])
def test_bad_chunk_size(size: Any):
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        GradCache(mlp(), manyview.create("loss", "infonce"), chunk_size=size)


def test_errors_leave_gradients_untouched():
    enc = mlp()
    loss_fn = manyview.create("loss", "infonce")
    x = data(6, 6)
    for p in enc.parameters():
        p.grad = torch.full_like(p, 0.5)
    before = grads(enc)
    gc = GradCache(enc, loss_fn, chunk_size=4)

    with pytest.raises(ValueError, match=r"different batch sizes \[6, 5\]"):
        gc.step([x, x[:5]])
    with pytest.raises(ValueError, match="2 encoders for 3 views"):
        GradCache([enc, enc], loss_fn, chunk_size=2).step([x, x, x])
    with pytest.raises(ValueError, match="one batch per view"):
        gc.step(x)
    with pytest.raises(ValueError, match=r"returned a tensor of shape \(4,\).*\(chunk, D\)"):
        GradCache(lambda t: t.sum(1), loss_fn, chunk_size=4).step([x, x])
    with pytest.raises(ValueError, match="returned a tuple"):
        GradCache(lambda t: (enc(t),), loss_fn, chunk_size=4).step([x, x])
    with pytest.raises(ValueError, match="stack=False"):
        GradCache([enc, mlp(d_out=3)], loss_fn, chunk_size=4).step([x, x])
    with pytest.raises(ValueError, match=r"scalar tensor, got shape \(6,\)"):
        GradCache(enc, lambda z: z.sum((1, 2)), chunk_size=4).step([x, x])
    with pytest.raises(ValueError, match="non-finite loss; nothing was backpropagated"):
        GradCache(enc, lambda z: z.sum() * math.inf, chunk_size=4).step([x, x])
    with pytest.raises(ValueError, match="non-finite loss; nothing was backpropagated"):
        GradCache(enc, lambda z: z.sum() * math.nan, chunk_size=4).step([x, x])
    assert_same(grads(enc), before)


def test_non_finite_loss_leaves_missing_grads_missing_and_buffers_unchanged():
    enc = bn_encoder()
    state = copy.deepcopy(enc.state_dict())
    with pytest.raises(ValueError, match="non-finite loss"):
        GradCache(enc, lambda z: z.sum() / 0.0, chunk_size=4).step([data(6, 6), data(6, 6)])
    assert all(p.grad is None for p in enc.parameters())
    for key, value in enc.state_dict().items():
        assert torch.equal(value, state[key]), key


# --------------------------------------------------------------------------- docs


def test_docs_example_runs():
    doc = (ROOT / "docs" / "training.md").read_text()
    section = doc[doc.index("## GradCache") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    exec(compile(code.group(1), "docs/training.md", "exec"), {})
