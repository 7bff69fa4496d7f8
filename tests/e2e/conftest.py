"""End-to-end fixtures: the fake catalog (Spotify + audio CDN over the 4Q clips) and one warm
classifier per module (its worker processes take seconds to start), shared by the tests of a
module through a module-scoped event loop."""
from __future__ import annotations

import shutil

import pytest
import pytest_asyncio

from tests.e2e.wiring import Catalog, load_songs, scratch_dir, started_classifier

SONGS = 6


@pytest.fixture(scope="session")
def songs(shared_data):
    return load_songs(shared_data, SONGS)


@pytest.fixture(scope="module")
def scratch():
    folder = scratch_dir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def catalog(songs, scratch):
    catalog = Catalog.start(songs, scratch / "cdn")
    yield catalog
    catalog.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def classifier():
    async with started_classifier() as classifier:
        yield classifier
