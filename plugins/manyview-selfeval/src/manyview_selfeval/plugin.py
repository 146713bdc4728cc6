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
