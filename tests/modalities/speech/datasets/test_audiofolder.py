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
