"""Shared fixtures: the national atlas and its network model (fresh per test, so tests may mutate them)."""

import pytest

from suanwang.atlas import Atlas, load_atlas
from suanwang.network import Network


@pytest.fixture
def atlas() -> Atlas:
    """The embedded national atlas (a fresh copy)."""
    return load_atlas()


@pytest.fixture
def network(atlas: Atlas) -> Network:
    """The calibrated latency model over `atlas`, no measured overrides."""
    return Network(atlas)
