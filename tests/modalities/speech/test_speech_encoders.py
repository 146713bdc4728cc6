"""Speech encoders: contracts, waveform vs feature inputs, wav2vec2/HuBERT."""

from __future__ import annotations

import pytest
import torch

import manyview
from manyview.testing import check_encoder
from manyview_speech.encoders.logmel import LogMelEncoder, LogMelTransformerEncoder
from manyview_speech.encoders.wav2vec2 import HuBERTEncoder, Wav2Vec2Encoder
from manyview_speech.views import LogMelView

SPEECH_ENCODERS = [
    e.name for e in manyview.manager.registry().entries("encoder") if e.plugin == "manyview-speech"
]
SPEECH_VIEWS = [
    e.name for e in manyview.manager.registry().entries("view") if e.plugin == "manyview-speech"
]


@pytest.mark.parametrize("name", SPEECH_ENCODERS)
def test_encoder_contract(name):
    check_encoder(manyview.create("encoder", name))


@pytest.mark.parametrize("name", SPEECH_VIEWS)
def test_view_contract(name):
    from manyview.testing import check_view

    check_view(manyview.create("view", name))


def test_registered_with_their_modality():
    kinds = {e.name: e.modality for e in manyview.manager.registry().entries("encoder")}
    assert {kinds[n] for n in ("logmel_cnn", "logmel_transformer", "wav2vec2", "hubert")} == {
        "audio"
    }
    assert all(manyview.entry("view", n).modality == "audio" for n in SPEECH_VIEWS)


@pytest.mark.parametrize("make", [LogMelEncoder, LogMelTransformerEncoder])
def test_waveforms_or_features_give_the_same_output(make, signals):
    torch.manual_seed(0)
    encoder = make(n_mels=40, output_dim=32).eval()
    x = torch.stack([signals.tone(440, 0.5), signals.chirp(200, 2000, 0.5)])
    with torch.no_grad():
        from_waves = encoder(x)
        from_feats = encoder(LogMelView(n_mels=40)(x))
    assert from_waves.shape == (2, 32)
    assert torch.allclose(from_waves, from_feats, atol=1e-5)


def test_logmel_encoder_in_eval_mode_is_per_sample(signals):
    encoder = LogMelEncoder().eval()
    x = torch.stack(
        [signals.tone(440, 0.5), signals.noise_burst(0.5), signals.chirp(50, 5000, 0.5)]
    )
    with torch.no_grad():
        assert torch.allclose(encoder(x)[1], encoder(x[1:2])[0], atol=1e-5)


def test_logmel_encoder_takes_any_length_and_refuses_wrong_features():
    encoder = LogMelEncoder(n_mels=40)
    assert encoder(torch.randn(2, 300)).shape == (2, 128)
    assert encoder(torch.randn(2, 48000)).shape == (2, 128)
    with pytest.raises(ValueError, match=r"n_mels=40"):
        encoder(torch.randn(2, 64, 100))
    with pytest.raises(ValueError, match="to_mono"):
        encoder(torch.randn(2, 2, 16000))
    with pytest.raises(ValueError, match="divisible by heads"):
        LogMelTransformerEncoder(channels=(30,), heads=4)


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
