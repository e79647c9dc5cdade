"""Shared fixtures: the national atlas and its network model (fresh per test, so tests may mutate them)."""

from collections.abc import Iterator

import pytest
from engines.ray_cluster import RayCluster
from engines.slurm_cluster import ClusterError, SlurmCluster

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


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A real single-node Slurm cluster (munged, slurmctld, slurmd, slurmrestd) private to this test session; the
    tests fail, not skip, when the Debian packages are missing (`make engines`)."""
    cluster = SlurmCluster()
    try:
        cluster.start()
    except ClusterError as e:
        pytest.fail(str(e), pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A real single-node Ray cluster (4 CPUs) private to this test session; tests that use it are in the xdist
    group "ray", so one worker starts it."""
    cluster = RayCluster(num_cpus=4).start()
    yield cluster
    cluster.close()
