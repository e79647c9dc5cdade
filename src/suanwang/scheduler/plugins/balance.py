"""Balance score: the site's busy fraction now (0..1), so load spreads."""

from __future__ import annotations

import numpy as np

from suanwang.scheduler.contract import CycleState, ScorePlugin


class BalanceScore(ScorePlugin):
    """Utilisation now (larger of CPU and GPU busy fraction), 0..1; depends on the state, never cached."""

    name = "balance"
    unit = "fraction"
    dynamic = True

    def score(self, cs: CycleState) -> np.ndarray:
        return cs.state.utilisation()
