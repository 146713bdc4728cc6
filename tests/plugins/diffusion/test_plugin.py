"""manyview-diffusion registers through its entry point, and listing imports neither torch
nor diffusers."""

from __future__ import annotations

import manyview


def test_loaded_through_the_entry_point():
    (info,) = [p for p in manyview.plugins() if p.distribution == "manyview-diffusion"]
    assert info.status == "loaded" and info.name == "diffusion", info.error
    assert sorted(info.registered["encoder"]) == ["ddae_dit", "ddae_unet"]
    for name in ("ddae_unet", "ddae_dit"):
        assert manyview.entry("encoder", name).modality == "image"


def test_lazy_public_names():
    import manyview_diffusion

    want = {"DDAEUNet", "DDAEDiT", "FeatureTap", "SelfConditioned", "DDPMLoss", "EDMLoss"}
    want |= {"EDMAugment", "AugmentConditioned", "set_attention", "attention_backend"}
    assert want | {"FlowMatchingLoss", "build_network", "load_network"} <= set(
        dir(manyview_diffusion)
    )
    assert manyview_diffusion.SelfConditioned.__name__ == "SelfConditioned"
    assert manyview_diffusion.EDMAugment().label_dim == 9


def test_listing_imports_neither_torch_nor_diffusers(fresh_cli):
    result = fresh_cli(
        ["list", "encoder", "--json"],
        imports=("manyview_diffusion", "manyview_diffusion.plugin"),
        heavy=("torch", "diffusers"),
    )
    assert result.returncode == 0, result.stderr
    assert result.heavy == []
    listed = {row["name"]: row for row in result.rows()}
    assert listed["ddae_unet"]["plugin"] == listed["ddae_dit"]["plugin"] == "manyview-diffusion"
