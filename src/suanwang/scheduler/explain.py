"""Why not here: per-site rejections from filter plugins and the one wording of "no site can take job ..."
shared by the online pipeline and the batch planner."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from suanwang.scheduler.contract import CycleState, FilterPlugin


def first_rejections(filters: Sequence[FilterPlugin], cs: CycleState, n_sites: int) -> list[str]:
    """For every site: '' if it passes every one of `filters`, else the reason of the first that rejects it."""
    out = [""] * n_sites
    for f in filters:
        for i in np.flatnonzero(~np.asarray(f.filter(cs), dtype=bool)).tolist():
            if not out[i]:
                out[i] = f.reason(cs, i)
    return out


def infeasible_text(job_id: str, rejections: Sequence[str]) -> str:
    """'no site can take job X: ' and each rejecting rule of `rejections` (one reason per site, '' = passed)
    with its site count and the first site's reason as an example - the one wording of every policy."""
    groups: dict[str, list[str]] = {}
    for r in rejections:
        if r:
            groups.setdefault(r.split(":", 1)[0], []).append(r)
    parts = [f"{rule} rejects {len(rs)} site(s) (e.g. {rs[0]})" for rule, rs in groups.items()]
    return f"no site can take job {job_id}: " + "; ".join(parts)
