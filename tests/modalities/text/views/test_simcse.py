"""simcse: the identity view, and SimCSE through the contrastive recipe (dropout makes the
two views)."""

from __future__ import annotations

import torch
from torch.utils.data import default_collate

from manyview.config import validate
from manyview.recipes.contrastive import ContrastiveRecipe
from manyview_text.views import SimCSE


def test_simcse_is_the_identity(g, texts):
    assert SimCSE()(texts, generator=g(0)) == texts


def test_simcse_through_the_contrastive_recipe():
    """The documented SimCSE configuration: the ``simcse`` view, two views, an encoder with
    dropout; the two views of a sentence differ in training mode only."""
    config = validate(
        {
            "data": {"name": "list"},
            "modalities": {
                "text": {
                    "encoder": "open_clip_text",
                    "encoder_options": {"dropout": 0.1},
                    "views": [{"name": "simcse"}],
                    "num_views": 2,
                }
            },
            "losses": [{"name": "infonce", "options": {"temperature": 0.05}}],
        }
    )
    data = [{"text": f"the digit {i}", "label": i, "index": i} for i in range(8)]
    recipe = ContrastiveRecipe(config, data)
    batch = default_collate(data)
    recipe.train()
    out = recipe.step(batch, torch.Generator().manual_seed(0))
    z = out.embeddings
    assert z.shape == (8, 2, 64) and torch.isfinite(out.loss)
    assert not torch.allclose(z[:, 0], z[:, 1])
    recipe.eval()
    with torch.no_grad():
        z = recipe.embed(batch, torch.Generator().manual_seed(0))
    assert torch.equal(z[:, 0], z[:, 1])
