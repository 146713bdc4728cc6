"""manyview-diffusion registers through its entry point, and listing imports neither torch
nor diffusers."""

from __future__ import annotations

import manyview


def test_loaded_through_the_entry_point():
    (info,) = [p for p in manyview.plugins() if p.distribution == "manyview-diffusion"]
    assert info.status == "loaded" and info.name == "diffusion", info.error


def test_listing_imports_neither_torch_nor_diffusers(fresh_cli):
    result = fresh_cli(
        ["list", "encoder", "--json"],
        imports=("manyview_diffusion", "manyview_diffusion.plugin"),
        heavy=("torch", "diffusers"),
    )
    assert result.returncode == 0, result.stderr
    assert result.heavy == []
