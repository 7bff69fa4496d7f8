"""Fault tests: one warm classifier pool per module (its workers take seconds to start)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import pytest_asyncio

from inference.pool import Classifier
from tests.e2e.wiring import weights_dir


@pytest.fixture(scope="module")
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="moodbot-faults-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def classifier(scratch):
    async with Classifier(weights_dir(), workers=1, timeout_s=30, max_queue=64) as warm:
        yield warm


@pytest.fixture(scope="session")
def clips(shared_data) -> list[Path]:
    return sorted((shared_data / "audio").glob("*.ogg"))[:12]
