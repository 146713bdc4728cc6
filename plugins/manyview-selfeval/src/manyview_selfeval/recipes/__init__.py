"""manyview-selfeval's recipes: ``self_e`` (:mod:`manyview_selfeval.recipes.self_e`)."""
