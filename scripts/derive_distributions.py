"""Derive the compact job-size and runtime distributions shipped in src/suanwang/workload/data/.

Reads the public traces (Alibaba cluster-trace-gpu-v2023 "openb" pod list; Microsoft Philly runtimes as
republished in alibaba/clusterdata cluster-trace-gpu-v2020) and writes:

- job_shapes.csv       (cpu_cores, gpu_cards, pods): the joint (cores, cards) shape of the Alibaba pods
- runtime_quantiles.csv (q, alibaba_lifetime_h, philly_runtime_h): 201 quantiles of each runtime, in hours

Usage:  python scripts/derive_distributions.py ALIBABA_POD_CSV PHILLY_CSV [OUT_DIR]
"""

from __future__ import annotations

import csv
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

QUANTILES = np.linspace(0.0, 1.0, 201)
TAIL_Q = 0.99  # runtimes above the p99 are clipped to it: the longest Alibaba pods were still running at trace end
MIN_RUNTIME_S = 60.0  # a job runs at least a minute (the traces hold zero-second records)
ALIBABA = "Alibaba cluster-trace-gpu-v2023 openb pods (github.com/alibaba/clusterdata; research/study use)"
PHILLY = "Microsoft Philly DL job runtimes via alibaba/clusterdata cluster-trace-gpu-v2020 (CC BY 4.0)"


def shapes(rows: list[dict[str, str]]) -> Counter:
    """(cores, cards) per pod: cores = ceil(cpu_milli / 1000); cards = num_gpu (a fractional share counts as 1)."""
    out: Counter = Counter()
    for r in rows:
        cores = max(1, math.ceil(float(r["cpu_milli"]) / 1000.0))
        cards = int(r["num_gpu"])
        out[(cores, cards)] += 1
    return out


def lifetimes_h(rows: list[dict[str, str]]) -> np.ndarray:
    """Run time of every scheduled pod in hours: deletion_time - scheduled_time (pending pods are skipped)."""
    out = []
    for r in rows:
        if r["pod_phase"] == "Pending" or not r["scheduled_time"] or not r["deletion_time"]:
            continue
        out.append(float(r["deletion_time"]) - float(r["scheduled_time"]))
    return np.array(out) / 3600.0


def table(x_h: np.ndarray) -> np.ndarray:
    """Quantiles of runtimes (hours) with the tail clipped at TAIL_Q and a floor of MIN_RUNTIME_S."""
    x = np.clip(x_h, MIN_RUNTIME_S / 3600.0, np.quantile(x_h, TAIL_Q))
    return np.quantile(x, QUANTILES)


def main(pods_csv: str, philly_csv: str, out_dir: str = "src/suanwang/workload/data") -> None:
    out = Path(out_dir)
    with open(pods_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    philly_h = np.loadtxt(philly_csv, skiprows=1, delimiter=",", ndmin=1) / 3600.0
    with (out / "job_shapes.csv").open("w", encoding="utf-8", newline="") as f:
        f.write(f"# source: {ALIBABA}; {len(rows)} pods; derived by scripts/derive_distributions.py\n")
        w = csv.writer(f)
        w.writerow(["cpu_cores", "gpu_cards", "pods"])
        for (cores, cards), n in sorted(shapes(rows).items()):
            w.writerow([cores, cards, n])
    ali, phi = table(lifetimes_h(rows)), table(philly_h)
    with (out / "runtime_quantiles.csv").open("w", encoding="utf-8", newline="") as f:
        f.write(f"# alibaba_lifetime_h source: {ALIBABA}; deletion - scheduled time of scheduled pods\n")
        f.write(f"# philly_runtime_h source: {PHILLY}; {len(philly_h)} jobs\n")
        f.write(f"# tails clipped at p{TAIL_Q * 100:g} (censored long pods); floor {MIN_RUNTIME_S:g} s\n")
        w = csv.writer(f)
        w.writerow(["q", "alibaba_lifetime_h", "philly_runtime_h"])
        for q, a, p in zip(QUANTILES, ali, phi, strict=True):
            w.writerow([f"{q:.3f}", f"{a:.6g}", f"{p:.6g}"])


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:4])
