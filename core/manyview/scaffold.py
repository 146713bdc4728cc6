"""``manyview new-plugin``: write an installable third-party plugin package.

The package registers one example loss through the ``manyview`` entry-point group, with
its factory given as a ``"module:attr"`` string so that ``manyview list`` stays fast, and
ships a test that runs manyview's loss contract checks on it.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

_PYPROJECT = """[project]
name = "{dist}"
version = "0.1.0"
description = "A manyview plugin: {short} loss"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["manyview", "torch"]

[project.entry-points.manyview]
{entry} = "{package}.plugin"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]
"""

_README = """# {dist}

A [manyview](https://pypi.org/project/manyview/) plugin. It registers the loss
`{loss_name}`: Wang & Isola's alignment plus uniformity on the hypersphere, over any
number of views.

```bash
pip install -e .            # or: uv pip install -e .
manyview list loss          # shows {loss_name}
pytest                      # runs manyview's loss contract checks on it
```

```python
import torch, manyview
loss = manyview.create("loss", "{loss_name}", t=2.0)
value = loss(torch.randn(32, 3, 128))   # (N, M, D): M views of N instances
```

Add more losses, views, encoders, teachers, datasets, benchmarks, recipes, configs or
readers in `src/{package}/plugin.py` with the matching `manyview_register_*` hooks, one
module per concept in a folder per kind (`losses/`, `views/`, `encoders/`, `datasets/`, ...),
as manyview's own plugin distributions do.
"""

_INIT = '''"""{dist}: a manyview plugin."""

__version__ = "0.1.0"
'''

_PLUGIN = '''"""Registers this package's additions with manyview (entry-point group "manyview")."""

import manyview


@manyview.hookimpl
def manyview_register_losses(register):
    # A "module:attr" string is imported only when the loss is created, so
    # `manyview list` does not import torch.
    register(
        "{loss_name}",
        "{package}.losses.align_uniform:AlignUniform",
        summary="Alignment plus uniformity on the hypersphere (Wang & Isola 2020)",
    )
'''

_LOSSES_INIT = '''"""This plugin's losses, one module each."""
'''

_LOSSES = '''"""Alignment and uniformity (Wang & Isola, ICML 2020) as a manyview loss over M views."""

from itertools import combinations

import torch
from torch import Tensor

from manyview.losses.base import MultiViewLoss


class AlignUniform(MultiViewLoss):
    """Alignment plus uniformity on the hypersphere (Wang & Isola 2020), over M views.

    L = mean over view pairs of E||z_i^m - z_i^l||^alpha
        + weight * mean over views of log E_(i<j) exp(-t ||z_i^m - z_j^m||^2)

    Args:
        alpha: alignment exponent (2).
        t: uniformity scale (2).
        weight: weight of the uniformity term (1).
        normalize: L2-normalise the views first.

    Inputs: views (N, M, D) or a list of M tensors (N, D). Output: a 0-dim tensor.
    """

    def __init__(self, alpha: float = 2.0, t: float = 2.0, weight: float = 1.0, *,
                 normalize: bool = True) -> None:
        super().__init__(normalize=normalize)
        self.alpha, self.t, self.weight = alpha, t, weight

    def compute(self, z: Tensor, **_) -> Tensor:
        n, m, _ = z.shape
        align = torch.stack([
            (z[:, a] - z[:, b]).norm(dim=1).pow(self.alpha).mean()
            for a, b in combinations(range(m), 2)
        ]).mean()
        iu = torch.triu_indices(n, n, offset=1, device=z.device)
        uniform = torch.stack([
            torch.logsumexp(-self.t * torch.cdist(z[:, v], z[:, v]).pow(2)[iu[0], iu[1]], 0)
            for v in range(m)
        ]).mean() - torch.log(torch.tensor(float(iu.shape[1]), dtype=z.dtype))
        return align + self.weight * uniform
'''

_TEST = '''"""manyview's contract checks, run on this plugin's loss."""

import torch

import manyview
from manyview.testing import LossContractTests


class TestAlignUniform(LossContractTests):
    name = "{loss_name}"


def test_registered():
    assert "{loss_name}" in manyview.available("loss")


def test_lower_for_aligned_views():
    loss = manyview.create("loss", "{loss_name}")
    z = torch.randn(16, 1, 32)
    aligned = loss(z.expand(16, 3, 32))
    noisy = loss(z + torch.randn(16, 3, 32))
    assert aligned < noisy
'''


def _names(dist: str) -> tuple[str, str, str]:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", dist):
        raise ValueError(
            f"{dist!r} is not a valid distribution name: use letters, digits, '-', '_' or '.', "
            "starting with a letter (e.g. manyview-myloss)"
        )
    package = re.sub(r"[^0-9a-zA-Z]+", "_", dist).lower().strip("_")
    if keyword.iskeyword(package) or package == "manyview":
        raise ValueError(f"{dist!r} would make the Python package {package!r}; pick another name")
    short = package.removeprefix("manyview_") or package
    return package, short, f"{short}_align_uniform"


def scaffold_plugin(name: str, directory: str | Path = ".", *, force: bool = False) -> Path:
    """Write the plugin package ``name`` under ``directory`` and return its folder."""
    package, short, loss_name = _names(name)
    root = Path(directory) / name
    if root.exists() and any(root.iterdir()) and not force:
        raise FileExistsError(
            f"{root} exists and is not empty; pass --force to overwrite its files"
        )
    values = {
        "dist": name,
        "package": package,
        "short": short,
        "loss_name": loss_name,
        "entry": short,
    }
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{package}/__init__.py": _INIT,
        f"src/{package}/plugin.py": _PLUGIN,
        f"src/{package}/losses/__init__.py": _LOSSES_INIT,
        f"src/{package}/losses/align_uniform.py": _LOSSES,
        "tests/test_plugin.py": _TEST,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values) if "{" in template else template)
    return root
