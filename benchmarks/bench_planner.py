"""Time `plan hub` over every city (363 candidates) x k = 1..3: instance, the single-candidate ranking (warm-started
LP per candidate) against cold LPs for a sample of candidates in the same run, and the k-site MIPs with their gaps.

Prints JSON. `--province 河南` or `--k 2` for a smaller run. The issue's target: <= 60 s on 2 cores, optimum proven.
`plan_hub_s` is what `plan hub --k K` spends (k = 1 is proven by the ranking; the k = 1 MIP is timed for reference).
"""

from __future__ import annotations

import argparse
import json
import time

from suanwang.atlas import load_atlas
from suanwang.network import Network
from suanwang.planner.candidates import build_candidates, select_places
from suanwang.planner.instance import build_instance, default_carbon_year
from suanwang.planner.mip import Model, evaluate, rank_with_status_quo

COLD_SAMPLE = 15


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--province", default=None)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--mip-time-limit", type=float, default=300.0)
    args = ap.parse_args()
    t_all = time.perf_counter()
    atlas = load_atlas()
    net = Network(atlas)
    existing, cands = build_candidates(atlas, select_places(atlas, province=args.province))
    t0 = time.perf_counter()
    inst, _ = build_instance(atlas, net, existing, [c.site for c in cands], carbon_year=default_carbon_year(atlas))
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sq, singles = rank_with_status_quo(inst)
    rank_s = time.perf_counter() - t0
    step = max(1, len(cands) // COLD_SAMPLE)
    sample = list(range(0, len(cands), step))[:COLD_SAMPLE]
    t0 = time.perf_counter()
    for j in sample:
        cold = evaluate(inst, (j,))
        assert abs(cold.objective - singles[j].objective) < 1e-7
    cold_per = (time.perf_counter() - t0) / len(sample)
    model = Model(inst)
    mips = []
    order = sorted(range(len(singles)), key=lambda j: -singles[j].objective)
    for k in range(1, args.k + 1):
        t0 = time.perf_counter()
        sol = model.solve_k(k, time_limit_s=args.mip_time_limit, start=tuple(order[:k]))  # k = 1 for reference
        mips.append({"k": k, "seconds": round(time.perf_counter() - t0, 2), "gap": sol.gap, "sites": sol.open})
    total = time.perf_counter() - t_all
    # what `plan hub --k K` runs: the instance, the ranking (k = 1 is proven by it) and the MIPs for k >= 2
    plan_hub_s = build_s + rank_s + sum(m["seconds"] for m in mips if m["k"] >= 2)
    print(
        json.dumps(
            {
                "candidates": len(cands),
                "columns": model.n_cols,
                "rows": model.n_rows,
                "instance_s": round(build_s, 2),
                "ranking_s": round(rank_s, 2),
                "ranking_per_candidate_ms": round(1e3 * rank_s / max(1, len(cands)), 2),
                "cold_lp_per_candidate_ms": round(1e3 * cold_per, 2),
                "warm_speedup": round(cold_per / (rank_s / max(1, len(cands))), 2),
                "mip": mips,
                "plan_hub_s": round(plan_hub_s, 2),
                "bench_total_s": round(total, 2),
                "optimum_proven": all(m["gap"] <= 1e-6 for m in mips),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
