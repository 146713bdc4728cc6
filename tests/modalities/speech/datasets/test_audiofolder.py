"""The audiofolder dataset: a folder of labelled clips, its bad files skipped and counted."""

from __future__ import annotations

import pytest

from manyview.testing import DatasetContractTests
from manyview_speech.audio import AudioFileError
from manyview_speech.datasets.audiofolder import AudioFolder


@pytest.mark.parametrize("preload", [True, False])
def test_audiofolder_skips_and_counts_bad_files(clip_folder, preload):
    root = clip_folder
    with pytest.warns(UserWarning, match="skipped 2 of 8 files"):
        data = AudioFolder(root, clip_seconds=0.25, preload=preload)
    assert len(data) == 6 and data.num_skipped == 2 and data.classes == ["high", "low"]
    item = data[4]
    assert item["audio"].shape == (4000,) and item["label"] == 1
    with pytest.raises(AudioFileError, match=r"empty\.wav|bad\.flac"):
        AudioFolder(root, on_error="raise", preload=preload)


class TestAudioFolderContract(DatasetContractTests):
    name = "audiofolder"

    @pytest.fixture(autouse=True)
    def _folder(self, clip_folder):
        for bad in ("low/empty.wav", "high/bad.flac"):  # the contract is on the usable clips
            (clip_folder / bad).unlink()
        self.kwargs = {"root": str(clip_folder), "clip_seconds": 0.25}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate": 0}, "audiofolder: sample_rate must be a positive int, got 0"),
        ({"sample_rate": "16k"}, "sample_rate must be a positive int, got '16k'"),
        ({"sample_rate": 10**7}, "sample_rate must be at most 768000 Hz"),
        ({"clip_seconds": 0}, "clip_seconds must be a positive finite number, got 0"),
        ({"clip_seconds": 86400}, "clip_seconds must be at most 3600"),
        ({"align": "middle"}, "audiofolder: unknown align 'middle'"),
        ({"extensions": ".wav"}, "extensions must be a non-empty list of file endings"),
        ({"preload": "no"}, "preload must be true or false, got 'no'"),
    ],
)
def test_audiofolder_bad_options_are_refused_before_reading(clip_folder, options, message):
    with pytest.raises(ValueError) as caught:
        AudioFolder(clip_folder, **options)
    assert message in str(caught.value) and "\n" not in str(caught.value)
