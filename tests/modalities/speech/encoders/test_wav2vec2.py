"""wav2vec2 and HuBERT encoders: options, and weights from a local file."""

from __future__ import annotations

import pytest
import torch

from manyview.testing import check_encoder
from manyview_speech.encoders.wav2vec2 import HuBERTEncoder, Wav2Vec2Encoder


def test_wav2vec2_and_hubert_options():
    enc = Wav2Vec2Encoder(layer=1, pooling="mean_std")
    assert enc.output_dim == 128 and enc(enc.example_inputs(2)).shape == (2, 128)
    frozen = HuBERTEncoder(freeze_feature_extractor=True)
    assert not any(p.requires_grad for p in frozen.model.feature_extractor.parameters())
    check_encoder(frozen)
    small = Wav2Vec2Encoder(config={"encoder_embed_dim": 32, "encoder_num_heads": 2})
    assert small.output_dim == 32
    with pytest.raises(ValueError, match="size must be 'tiny' or one of"):
        Wav2Vec2Encoder(size="huge")
    with pytest.raises(ValueError, match=r"layer must be in 1\.\.2"):
        HuBERTEncoder(layer=5)
    with pytest.raises(ValueError, match="at least 400 samples"):
        enc(torch.zeros(2, 100))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_wav2vec2_weights_from_a_local_file(tmp_path, suffix):
    torch.manual_seed(0)
    source = Wav2Vec2Encoder()
    path = tmp_path / f"w{suffix}"
    if suffix == ".pt":
        torch.save({"state_dict": source.model.state_dict()}, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, str(path))
    torch.manual_seed(1)
    loaded = Wav2Vec2Encoder(checkpoint=str(path)).eval()
    x = source.example_inputs(2)
    with torch.no_grad():
        assert torch.allclose(source.eval()(x), loaded(x))
    with pytest.raises(ValueError, match="does not fit hubert size 'tiny'"):
        HuBERTEncoder(
            checkpoint=str(path), config={"encoder_embed_dim": 32, "encoder_num_heads": 2}
        )
    with pytest.raises(ValueError, match="no such file"):
        Wav2Vec2Encoder(checkpoint=str(tmp_path / "missing.pt"))
