"""The engine of the InfoNCE family: exact row log-sum-exps of masked, scaled inner products,
dense or tiled (never the N x N logits matrix: an online log-sum-exp over row x column tiles
with a custom autograd, as Inf-CL does, Cheng et al., CVPR 2025, arXiv 2410.17243), with
fused Triton kernels on CUDA. The package is named for what a loss configures with it, its
``engine`` option (``"dense"`` or ``"tiled"``, :class:`EngineConfig`), since it holds both forms.

Modules, one concern each; a module imports only those above it in this list:

- :mod:`~manyview.losses.engine.runtime`: torch's tf32 mode, Triton's interpreter switch;
- :mod:`~manyview.losses.engine.inputs`: :class:`LSEProblem`, the operands, and their checks;
- :mod:`~manyview.losses.engine.tiles`: the PyTorch tiles (:class:`TorchTiles`: forward,
  backward, softmax moment, CLIP's rows-and-columns form), one :class:`TileGrid` walk;
- :mod:`~manyview.losses.engine.autograd`: the autograd Functions of the tiled forms;
- :mod:`~manyview.losses.engine.triton_kernels`: the fused Triton kernels, imported only by
  :class:`TritonBackend` and only for tensors they can take (importing this package does not
  import triton);
- :mod:`~manyview.losses.engine.backend`: PyTorch tiles or Triton kernels
  (:class:`TritonBackend`: the self-check, its record and the fallback);
- :mod:`~manyview.losses.engine.config`: :class:`EngineConfig`, a loss's ``engine`` option;
- :mod:`~manyview.losses.engine.dense`: :func:`dense_logsumexp`, the materialised form;
- :mod:`~manyview.losses.engine.lse`: :func:`tiled_logsumexp` and its rows-and-columns and
  softmax-moment kin;
- :mod:`~manyview.losses.engine.layout`: :func:`view_major_lse`, the multi-view layout.

docs/losses.md ("Tiled engine") says when to use which engine.
"""

from manyview.losses.engine.backend import BACKENDS, TritonBackend, default_triton_backend
from manyview.losses.engine.config import (
    DEFAULT_MIN_ENTRIES,
    DEFAULT_TILE,
    ENGINES,
    EngineConfig,
    EngineOption,
)
from manyview.losses.engine.dense import dense_logsumexp
from manyview.losses.engine.inputs import LSEProblem
from manyview.losses.engine.layout import view_major_lse
from manyview.losses.engine.lse import (
    tiled_logsumexp,
    tiled_logsumexp_rows_cols,
    tiled_softmax_moment,
)
from manyview.losses.engine.runtime import tf32_enabled, triton_interprets
from manyview.losses.engine.tiles import TileGrid, TorchTiles

__all__ = [
    "BACKENDS",
    "DEFAULT_MIN_ENTRIES",
    "DEFAULT_TILE",
    "ENGINES",
    "EngineConfig",
    "EngineOption",
    "LSEProblem",
    "TileGrid",
    "TorchTiles",
    "TritonBackend",
    "default_triton_backend",
    "dense_logsumexp",
    "tf32_enabled",
    "tiled_logsumexp",
    "tiled_logsumexp_rows_cols",
    "tiled_softmax_moment",
    "triton_interprets",
    "view_major_lse",
]
