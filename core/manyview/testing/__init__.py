"""Contract checks and test helpers for anything registered with manyview, for the project
and plugin authors.

Each ``check_*`` function raises ``AssertionError`` with a message on failure, so it works in
any test runner. The ``*ContractTests`` classes wrap them as pytest test methods::

    from manyview.testing import LossContractTests

    class TestMyLoss(LossContractTests):
        name = "my_loss"          # as registered through manyview_register_losses
        kwargs = {"temperature": 0.2}

manyview's own suite runs the same checks over everything in the registry, so a newly
registered loss, view, encoder, teacher, recipe or benchmark is checked with no new test.

One module per concern, each importable on its own:

- :mod:`manyview.testing.examples`: :func:`build` (create a registered thing from its
  ``example_kwargs``) and the built-in teachers' example arguments;
- :mod:`manyview.testing.losses`, :mod:`~manyview.testing.views`,
  :mod:`~manyview.testing.encoders`, :mod:`~manyview.testing.teachers`: the contract checks
  of each kind;
- :mod:`manyview.testing.recipes`, :mod:`~manyview.testing.datasets`,
  :mod:`~manyview.testing.benchmarks`: the recipe, dataset and benchmark protocols of
  ``docs/architecture.md``;
- :mod:`manyview.testing.distributed`: a loss under torch.distributed against one process
  (its ranks run ``python -m manyview.testing.distributed``);
- :mod:`manyview.testing.attention`: a CPU stand-in for ``xformers.ops``.

The names below are re-exported here and load their module when first used, so importing
``manyview.testing`` alone imports nothing heavy.
"""

from __future__ import annotations

from manyview.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "build": "manyview.testing.examples",
    "LOSS_CHECKS": "manyview.testing.losses",
    "LossContractTests": "manyview.testing.losses",
    "check_loss_bad_input": "manyview.testing.losses",
    "check_loss_bf16": "manyview.testing.losses",
    "check_loss_dtype": "manyview.testing.losses",
    "check_loss_gradients": "manyview.testing.losses",
    "check_loss_keywords": "manyview.testing.losses",
    "check_loss_list_input": "manyview.testing.losses",
    "check_loss_output": "manyview.testing.losses",
    "check_loss_small_temperature": "manyview.testing.losses",
    "is_distillation": "manyview.testing.losses",
    "ViewContractTests": "manyview.testing.views",
    "check_view": "manyview.testing.views",
    "EncoderContractTests": "manyview.testing.encoders",
    "check_encoder": "manyview.testing.encoders",
    "TeacherContractTests": "manyview.testing.teachers",
    "check_teacher": "manyview.testing.teachers",
    "RECIPE_CHECKS": "manyview.testing.recipes",
    "RecipeContractTests": "manyview.testing.recipes",
    "check_recipe_encode": "manyview.testing.recipes",
    "check_recipe_gradcache": "manyview.testing.recipes",
    "check_recipe_resume": "manyview.testing.recipes",
    "check_recipe_state": "manyview.testing.recipes",
    "check_recipe_steps": "manyview.testing.recipes",
    "example_config": "manyview.testing.recipes",
    "DatasetContractTests": "manyview.testing.datasets",
    "check_dataset": "manyview.testing.datasets",
    "check_dataset_determinism": "manyview.testing.datasets",
    "BenchmarkContractTests": "manyview.testing.benchmarks",
    "check_benchmark": "manyview.testing.benchmarks",
    "tiny_run": "manyview.testing.benchmarks",
    "TEST_CONTEXT": "manyview.testing.examples",
    "check_distributed_equivalence": "manyview.testing.distributed",
    "check_attention_option": "manyview.testing.attention",
    "fake_xformers": "manyview.testing.attention",
    "reference_xformers_ops": "manyview.testing.attention",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
