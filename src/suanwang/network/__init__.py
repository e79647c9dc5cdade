"""数网 network: latency, bandwidth and transfer model; latency-tier coverage."""

from suanwang.network.calibration import Calibration, calibrate
from suanwang.network.coverage import Coverage, coverage, serving_sites
from suanwang.network.model import TIERS_MS, Network, node_key

__all__ = [
    "TIERS_MS",
    "Calibration",
    "Coverage",
    "Network",
    "calibrate",
    "coverage",
    "node_key",
    "serving_sites",
]
