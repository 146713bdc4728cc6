"""Registers manyview-selfeval's entries (entry-point group ``manyview``).

Factories are ``"module:Attr"`` strings, so ``manyview list`` imports neither torch nor
diffusers.
"""

from __future__ import annotations

from typing import Any

import manyview

RECIPES: dict[str, Any] = {
    "self_e": (
        "manyview_selfeval.recipes.self_e:SelfERecipe",
        "Self-E any-step text-to-image training from scratch (flow matching as mode)",
    ),
}
"""The training recipes."""


@manyview.hookimpl
def manyview_register_recipes(register: Any) -> None:
    manyview.register_all(register, RECIPES)


CONFIGS: dict[str, Any] = {
    "self_e": (
        "manyview_selfeval.configs:self_e",
        "digits3: Self-E, a tiny UNet generating a digit from its prompt in any number of steps",
    ),
    "flow_matching": (
        "manyview_selfeval.configs:flow_matching",
        "digits3: flow matching with the self_e configuration's budget (the baseline)",
    ),
}
"""The run configurations on digits3."""


@manyview.hookimpl
def manyview_register_configs(register: Any) -> None:
    manyview.register_all(register, CONFIGS)


BENCHMARKS: dict[str, Any] = {
    "any_step": {
        "factory": "manyview_selfeval.benchmarks.any_step:run",
        "summary": "digit accuracy and Fréchet distance of prompted samples at K = 1..50 steps, "
        "side by side with a compare run",
        "requires": "manyview_selfeval.benchmarks.any_step:PromptGenerator",
        "example_run": "manyview_selfeval.benchmarks.any_step:example_run",
    },
}
"""The benchmarks (``manyview bench --suite any_step``)."""


@manyview.hookimpl
def manyview_register_benchmarks(register: Any) -> None:
    manyview.register_all(register, BENCHMARKS)


@manyview.hookimpl
def manyview_register_commands(register: Any) -> None:
    register(
        "generate",
        "manyview_selfeval.commands:run",
        configure="manyview_selfeval.commands:configure",
        help="a PNG grid of images generated from prompts by a self_e run, in any number of steps",
    )
