"""``manyview new-plugin``: write an installable third-party plugin package.

Two kinds:

- ``loss`` (default): one example loss registered through the ``manyview`` entry-point
  group, with a test that runs manyview's loss contract checks on it;
- ``objective``: an objective plugin — a recipe (an :class:`~manyview.recipes.EmbedRecipe`
  with a teacher), a loss and a teacher — with tests that run the loss, teacher and recipe
  contract checks (build, steps, bit-identical resume, GradCache == plain, state, encode).

Factories are given as ``"module:attr"`` strings so that ``manyview list`` stays fast.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

_PYPROJECT = """[project]
name = "{dist}"
version = "0.1.0"
description = "A manyview plugin: {short} {what}"
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
    # A "module:attr" string is imported only when what it names is created, so
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


_README_OBJECTIVE = """# {dist}

A [manyview](https://pypi.org/project/manyview/) objective plugin. It registers:

- the recipe `{recipe_name}`: M views of one modality through an encoder and projector, a
  multi-view loss over the views, plus a consistency term pulling every view's embedding
  to an EMA teacher's embedding of the first view (mean teacher, Tarvainen & Valpola 2017);
- the teacher `{teacher_name}`: an exponential moving average of the student;
- the loss `{loss_name}`: alignment plus uniformity (Wang & Isola 2020) over M views.

```bash
pip install -e .            # or: uv pip install -e .
manyview list recipe        # shows {recipe_name}
pytest                      # manyview's loss, teacher and recipe contract checks
```

Train it from a configuration (the recipe's `example_config` in `recipes/mean_teacher.py` is one):

```toml
[run]
recipe = "{recipe_name}"
[data]
name = "synthetic"
[modalities.a]
encoder = "mlp"
num_views = 2
views = [{{ name = "gaussian_noise", options = {{ std = 0.1 }} }}]
[teacher]
name = "{teacher_name}"
[[losses]]
name = "{loss_name}"
[recipe_options]
consistency = 1.0
```
"""

_OBJECTIVE_HOOKS = """

@manyview.hookimpl
def manyview_register_teachers(register):
    register(
        "{teacher_name}",
        "{package}.teachers.mean_teacher:MeanTeacher",
        summary="Exponential moving average of the student (Tarvainen & Valpola 2017)",
    )


@manyview.hookimpl
def manyview_register_recipes(register):
    register(
        "{recipe_name}",
        "{package}.recipes.mean_teacher:MeanTeacherRecipe",
        summary="Multi-view loss plus consistency with an EMA teacher, on one modality",
    )
"""
_PLUGIN_OBJECTIVE = _PLUGIN + _OBJECTIVE_HOOKS
"""The loss plugin's ``plugin.py`` and the teacher's and the recipe's registrations."""

_TEACHERS_INIT = '''"""This plugin's teachers, one module each."""
'''

_RECIPES_INIT = '''"""This plugin's recipes, one module each."""
'''

_TEACHERS = '''"""A mean teacher (Tarvainen & Valpola, NeurIPS 2017), written to manyview's teacher protocol.

The protocol (manyview's docs/architecture.md, "Teacher"): called on a mapping modality ->
batch (or on one batch), it returns targets without gradients; ``update(student, step)``
runs after every optimizer step; its state is its ``state_dict``; no parameter requires
grad; ``from_context`` names the constructor arguments a recipe fills in.
"""

import copy

import torch
from torch import nn

from manyview.options import check_fraction
from manyview.teachers import Teacher, read_key


class MeanTeacher(Teacher):
    """An exponential moving average of the student's parameters and buffers.

    Args:
        student: the student module (copied; the copy never requires grad).
        momentum: m in theta_t <- m theta_t + (1 - m) theta_s.
        key: the entry of a mapping input to read (a recipe passes its modality).
    """

    from_context = {{"student": "student", "key": "modality"}}

    def __init__(self, student: nn.Module, *, momentum: float = 0.99, key: str | None = None):
        super().__init__()
        self.hold_student(student, "{teacher_name}")  # by reference: self.student
        self.module = copy.deepcopy(student).requires_grad_(False).eval()
        self.momentum = check_fraction(momentum, "momentum", "{teacher_name}")
        self.key = key

    def targets(self, inputs, **kwargs):
        return self.module(read_key(inputs, self.key, "{teacher_name}"))

    @torch.no_grad()
    def update(self, student=None, step=None):
        source = (student or self.student).state_dict()
        for name, t in self.module.state_dict().items():
            if t.is_floating_point():
                t.mul_(self.momentum).add_(source[name].detach(), alpha=1 - self.momentum)
            else:
                t.copy_(source[name])
'''

_RECIPES = '''"""A mean-teacher objective, written to manyview's recipe protocol.

The recipe is an EmbedRecipe: ``draw`` makes the step's views, ``embed_views`` encodes them
into (N, M, D), ``objective`` turns them into the loss. The trainer composes the three for
a plain step, under DDP, and with GradCache (``[run] gradcache_chunk``); it checkpoints
everything the recipe owns (its ``state_dict``) and calls ``after_step`` (the teacher's
update) after every optimizer step.
"""

import torch
import torch.nn.functional as F
from torch import nn

from manyview.config import ConfigError
from manyview.context import BuildContext
from manyview.recipes import (
    EmbedRecipe,
    StepOutput,
    WeightedLosses,
    batch_inputs,
    build_encoder,
    build_teacher,
    build_views,
    recipe_options,
)
from manyview.recipes.parts import build_projector


class MeanTeacherRecipe(EmbedRecipe):
    """M views of one modality; the ``[[losses]]`` over the (N, M, D) embeddings plus
    ``consistency`` times the mean squared distance between each view's normalised
    embedding and the teacher's embedding of the first view.

    ``[recipe_options]``: ``consistency`` (default 1.0).
    """

    example_config = """
[run]
recipe = "{recipe_name}"
steps = 4
batch_size = 8
[data]
name = "synthetic"
options = {{ modalities = {{ a = 6 }}, num_samples = 32, num_classes = 4 }}
[modalities.a]
encoder = "mlp"
encoder_options = {{ output_dim = 8, hidden_dim = 8 }}
num_views = 2
projector_dim = 8
views = [{{ name = "gaussian_noise", options = {{ std = 0.1 }} }}]
[teacher]
name = "{teacher_name}"
options = {{ momentum = 0.9 }}
[[losses]]
name = "{loss_name}"
[recipe_options]
consistency = 0.5
"""

    def __init__(self, config, dataset):
        super().__init__()
        if len(config["modalities"]) != 1:
            raise ConfigError("{recipe_name}: configure exactly one [modalities.<name>] table")
        ((name, modality),) = config["modalities"].items()
        options = recipe_options(config, {{"consistency": 1.0}}, "{recipe_name}")
        self.consistency = float(options["consistency"])
        encoder = build_encoder(name, modality, dataset)
        self.model = nn.Sequential(encoder, build_projector(modality, encoder.output_dim))
        self.modality, self.num_views = name, modality["num_views"]
        self.views = build_views(name, modality)
        context = BuildContext(
            student=self.model, modality=name, modalities=(name,),
            dataset_size=len(dataset), steps=config["run"]["steps"],
        )
        self.teacher = build_teacher(config.get("teacher"), context)
        self.losses = WeightedLosses.from_config(
            config["losses"], context=context, who="{recipe_name}"
        )
        self.losses.check_views(self.num_views)

    @property
    def modalities(self):
        return (self.modality,)

    def encode(self, modality, inputs):
        return self.model(inputs)

    def draw(self, batch, generator):
        return [self.views(batch[self.modality], generator) for _ in range(self.num_views)]

    def embed_views(self, views):
        return torch.stack([self.model(v) for v in views], dim=1)

    def objective(self, z, batch, views):
        total, components = self.losses(z, **batch_inputs(batch))
        with torch.no_grad():
            target = F.normalize(self.teacher({{**batch, self.modality: views[0]}}), dim=-1)
        consistency = (F.normalize(z, dim=-1) - target[:, None]).pow(2).sum(-1).mean()
        components["consistency"] = consistency.detach()
        return StepOutput(total + self.consistency * consistency, components, z.detach())
'''

_TEST_OBJECTIVE = '''"""manyview's contract checks, run on this plugin's loss, teacher and recipe."""

import torch
from torch import nn

import manyview
from manyview.testing import LossContractTests, RecipeContractTests, TeacherContractTests


class TestAlignUniform(LossContractTests):
    name = "{loss_name}"


class TestMeanTeacher(TeacherContractTests):
    name = "{teacher_name}"

    @property
    def kwargs(self):
        return {{"student": nn.Linear(8, 4), "momentum": 0.5}}


class TestMeanTeacherRecipe(RecipeContractTests):
    name = "{recipe_name}"


def test_registered():
    assert "{recipe_name}" in manyview.available("recipe")
    assert "{teacher_name}" in manyview.available("teacher")


def test_the_teacher_follows_the_student():
    student = nn.Linear(8, 4)
    teacher = manyview.create("teacher", "{teacher_name}", student=student, momentum=0.5)
    with torch.no_grad():
        student.weight.add_(1.0)
    before = teacher.module.weight.clone()
    teacher.update(student, 0)
    assert torch.allclose(teacher.module.weight, 0.5 * before + 0.5 * student.weight)
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
    _check_not_installed(dist, package)
    short = package.removeprefix("manyview_") or package
    return package, short, f"{short}_align_uniform"


def _check_not_installed(dist: str, package: str) -> None:
    """Refuse the name of an installed distribution or an importable top-level package: the
    scaffold's install command would replace it."""
    import importlib.metadata
    import importlib.util

    try:
        found = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        found = None
    if found is not None:
        raise ValueError(
            f"{dist!r} is an installed distribution ({found.metadata['Name']} "
            f"{found.version}); installing the new package would replace it: pick another "
            "name, e.g. manyview-<yourname>-myloss"
        )
    if importlib.util.find_spec(package) is not None:
        raise ValueError(
            f"{dist!r} would make the Python package {package!r}, which is already importable "
            "here; installing the new package would shadow it: pick another name"
        )


KINDS = ("loss", "objective")
"""What ``manyview new-plugin --kind`` can scaffold."""


def scaffold_plugin(
    name: str, directory: str | Path = ".", *, force: bool = False, kind: str = "loss"
) -> Path:
    """Write the plugin package ``name`` (of ``kind`` "loss" or "objective") under
    ``directory`` and return its folder."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
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
        "recipe_name": f"{short}_mean_teacher",
        "teacher_name": f"{short}_ema",
        "what": "loss" if kind == "loss" else "objective (recipe, loss, teacher)",
    }
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README if kind == "loss" else _README_OBJECTIVE,
        f"src/{package}/__init__.py": _INIT,
        f"src/{package}/plugin.py": _PLUGIN if kind == "loss" else _PLUGIN_OBJECTIVE,
        f"src/{package}/losses/__init__.py": _LOSSES_INIT,
        f"src/{package}/losses/align_uniform.py": _LOSSES,
        "tests/test_plugin.py": _TEST if kind == "loss" else _TEST_OBJECTIVE,
    }
    if kind == "objective":
        files[f"src/{package}/teachers/__init__.py"] = _TEACHERS_INIT
        files[f"src/{package}/teachers/mean_teacher.py"] = _TEACHERS
        files[f"src/{package}/recipes/__init__.py"] = _RECIPES_INIT
        files[f"src/{package}/recipes/mean_teacher.py"] = _RECIPES
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values) if "{" in template else template)
    return root
