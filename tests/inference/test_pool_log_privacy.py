"""The classifier's log lines name no file: a user's upload is saved under the name they gave it
("voice memo for Jane.ogg"), and a file name is personal data."""
from __future__ import annotations

import logging
import shutil

from inference import Classifier
from inference.pool import FALLBACK_TIMEOUT
from tests.inference.test_predict import clips, tiny_weights  # noqa: F401 (fixtures)


async def test_a_fallback_to_the_ann_is_logged_without_the_files_name(tiny_weights, clips, tmp_path, caplog):
    upload = tmp_path / "voice memo for Jane.ogg"
    shutil.copy(clips[0], upload)
    caplog.set_level(logging.DEBUG)
    async with Classifier(tiny_weights, timeout_s=0.001) as classifier:  # the main model times out
        result = await classifier.classify(upload)

    assert result.fallback_reason == FALLBACK_TIMEOUT
    assert "Fallback ANN answers" in caplog.text  # the line is still written…
    assert "Jane" not in caplog.text  # …without the file's name
