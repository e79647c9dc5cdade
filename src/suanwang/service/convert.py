"""Values at the service's edges: the scheduler's clock from wall time, and numbers as JSON can hold them."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

# Signals are indexed by local hour of day; the programme's clock is China Standard Time.
GRID_TZ = ZoneInfo("Asia/Shanghai")


def now_h(at: datetime | None = None) -> float:
    """Hours since local (China Standard Time) midnight of 1970-01-01: the scheduler's clock for the service."""
    t = at.astimezone(GRID_TZ) if at else datetime.now(GRID_TZ)
    return (t.timestamp() + t.utcoffset().total_seconds()) / 3600.0


def finite(x: float | None) -> float | None:
    """x, or None when it is not a finite number (JSON has no inf / NaN)."""
    return None if x is None or not math.isfinite(x) else float(x)
