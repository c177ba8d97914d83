"""The folder of Stooq files a user saved, shared by the tests of the files source."""

from pathlib import Path

import pytest

from market_assets_tests.sources.user_files import save_like_a_user


@pytest.fixture(scope="module")
def saved_files(tmp_path_factory, synthetic_universe) -> Path:
    """A folder as a user fills it: the market archives, the index pages, one symbol's CSV."""
    return save_like_a_user(tmp_path_factory.mktemp("stooq_files"), synthetic_universe)
