"""Ray dispatch: jobs per second from `placed` to accepted by Ray through one real `suanwang agent`, against a bare
loop of Ray Jobs API submits in the same run (the ceiling), and each job's placed-to-accepted time. Prints JSON.

    python benchmarks/bench_ray.py [--jobs 20] [--reps 2] [--settle-s 10] [--out FILE]

A private Ray head (the tests' own, 1,024 logical CPUs) and a real `suanwang serve` (SQLite) whose only site that
is up is the Ray site. Jobs ask for 1 CPU, so room never gates them and the rate measured is dispatch. Per
repetition: raw - `JobSubmissionClient.submit_job` in a loop (entrypoint `true`, 1 CPU), the same by 4 threads
(the agent submits 4 at once), and agent - one batch of jobs submitted to the service, rate = jobs / (last audit
`start` - first audit `place`), i.e. placement, claim, Ray submit and the agent's report. Each Ray job starts a
supervisor and a driver process, which go on using the machine after their submission: before each phase the
benchmark waits until Ray runs no job, at most --settle-s (10) seconds (`idle_wait_s` in all), and the phases'
order rotates from one repetition to the next, so no phase always pays for its predecessor's jobs. Ratios are
taken per repetition, then the median. Keep --jobs small on a shared machine; read the ratios rather than the
absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from engines.platform import Platform, wait_for  # noqa: E402
from engines.ray_cluster import RayCluster  # noqa: E402

SITE = "bench-ray"
THREADS = 4  # `suanwang agent --submit-threads` default: the raw ceiling is also measured with this many submitters
LOGICAL_CPUS = 1024  # one CPU per job (jobs must ask for room), more than a run ever holds


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso.removesuffix("Z")).timestamp()


def raw_rate(cluster: RayCluster, jobs: int, tag: str, threads: int = 1) -> float:
    """Jobs/s of a bare loop of Ray Jobs API submits (the engine's own ceiling), by `threads` submitters."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(cluster.address)

    def one(i: int) -> None:
        client.submit_job(entrypoint="true", submission_id=f"raw-{tag}-{threads}-{i}", entrypoint_num_cpus=1)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(jobs)))
    return jobs / (time.perf_counter() - t0)


def settle(cluster: RayCluster, at_most_s: float) -> float:
    """Wait until the Ray cluster has no pending or running job, or `at_most_s` seconds; seconds waited."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(cluster.address)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < at_most_s:
        if not any(str(j.status).rsplit(".", 1)[-1] in ("PENDING", "RUNNING") for j in client.list_jobs()):
            break
        time.sleep(1.0)
    return time.perf_counter() - t0


def agent_rate(p: Platform, jobs: int) -> tuple[float, list[float]]:
    """Jobs/s from the first placement to the last engine acceptance through the agent, and each job's
    placed-to-accepted time (ms)."""
    body = {"jobs": [{"origin": "许昌", "cpu_cores": 1, "runtime_h": 0.01, "command": "true"} for _ in range(jobs)]}
    ids = [j["id"] for j in p.call("POST", "/api/v1/jobs/batch", headers=p.tenant, json=body)["jobs"]]
    wait_for(lambda: all(p.job(j)["state"] in ("running", "done") for j in ids), "every job to be accepted", 300)
    placed, started = {}, {}
    items = p.call("GET", f"/api/v1/audit?limit={min(500, 4 * jobs + 50)}")["items"]
    for e in items:
        jid = e["object"].removeprefix("job:")
        if jid in ids and e["action"] == "place":
            placed[jid] = _at(e["at"])
        if jid in ids and e["action"] == "start":
            started[jid] = _at(e["at"])
    assert len(placed) == len(started) == jobs, (len(placed), len(started))
    span = max(started.values()) - min(placed.values())
    return jobs / span, [1000 * (started[j] - placed[j]) for j in ids]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def measure(jobs: int = 20, reps: int = 2, settle_s: float = 10.0) -> dict:
    """Start a private Ray head and a platform, run `reps` alternating raw / agent runs of `jobs` jobs, stop both."""
    load_before = os.getloadavg()[0]
    cluster = RayCluster(num_cpus=LOGICAL_CPUS).start()  # logical CPUs: room never gates the rate
    root = Path(cluster.root) / "platform"
    root.mkdir()
    p = Platform(root)
    try:
        p.only_engine_sites()
        site = {
            "id": SITE, "name_zh": "许昌 Ray", "name_en": "Xuchang Ray", "province_id": "henan", "lat": 34.035771,
            "lon": 113.852454, "pue": 1.2, "cpu_cores": LOGICAL_CPUS, "engine": "ray", "allow_commands": True,
            "engine_settings": {"address": cluster.address},
        }  # fmt: skip
        p.add_site(site, cluster.env)
        wait_for(lambda: p.site(SITE)["engine_capacity"], "the agent's first report")
        agent_rate(p, 2)  # warm-up: the agent's first Ray client, the service's first placements
        raw_rate(cluster, 2, "warm")
        runs, latencies, idle = [], [], 0.0
        for r in range(reps):
            phases = ["raw", "threads", "agent"]
            got: dict[str, float] = {}
            for phase in phases[r % 3 :] + phases[: r % 3]:  # the order rotates
                idle += settle(cluster, settle_s)
                if phase == "agent":
                    got[phase], lat = agent_rate(p, jobs)
                    latencies += lat
                else:
                    got[phase] = raw_rate(cluster, jobs, str(r), 1 if phase == "raw" else THREADS)
            raw, raw_par, via = got["raw"], got["threads"], got["agent"]
            runs.append(
                {
                    "order": phases[r % 3 :] + phases[: r % 3],
                    "raw_loop_jobs_per_s": round(raw, 2),
                    "raw_threads_jobs_per_s": round(raw_par, 2),
                    "agent_jobs_per_s": round(via, 2),
                    "ratio_to_loop": round(via / raw, 3),
                    "ratio_to_threads": round(via / raw_par, 3),
                }
            )
        return {
            "engine": "ray " + __import__("ray").__version__,
            "jobs_per_run": jobs,
            "reps": runs,
            "threads": THREADS,
            "ratio_to_loop_median": round(statistics.median(r["ratio_to_loop"] for r in runs), 3),
            "ratio_to_threads_median": round(statistics.median(r["ratio_to_threads"] for r in runs), 3),
            "placed_to_accepted_ms": {
                "p50": round(_pct(latencies, 0.5), 1),
                "p99": round(_pct(latencies, 0.99), 1),
                "max": round(max(latencies), 1),
            },
            "idle_wait_s": round(idle, 1),
            "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        }
    finally:
        p.close()
        cluster.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--settle-s", type=float, default=10.0, help="at most this long waiting for Ray to run no job")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = json.dumps(measure(args.jobs, args.reps, args.settle_s), indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
