"""Engine dispatch: jobs per second into a real engine through the executor, against the engine's own raw
submission rate in the same run (the ceiling), and each job's submit-to-running time. Prints JSON.

    python benchmarks/bench_engines.py [--jobs 300] [--reps 2] [--threads 1] [--latency-jobs 20]
                                       [--agent-jobs 300] [--out FILE]

Slurm: a private single-node cluster (the tests' own, `make engines` installs the packages). Throughput jobs go
to a partition that is DOWN, so Slurm accepts and queues them but starts none: the rate measured is submission,
not the node's two cores running `true`. The paths:
- raw REST: a bare loop of slurmrestd `POST /job/submit` (same socket, a minimal job, one httpx client), and the
  same loop posting exactly the request the executor makes (its script, time limit, output file, environment);
- executor REST: `SlurmExecutor.submit` (job folder, name, script, POST, recording the Slurm id);
- raw sbatch: a bare loop of `sbatch --wrap true`; executor sbatch: `SlurmExecutor.submit` in sbatch mode.
With `--threads N`, N submitters share the work (the raw loop likewise). The queue is emptied between runs.
The executor's own work per job (its wall time outside the engine call) is reported too, with the ratio that work
alone allows against the raw rate: on a busy machine that is steadier than the measured ratio.
Within a run, raw and executor submit in alternating chunks (a tenth of the jobs each), so that the machine's
drift hits both alike; the ratio is per run, then the median of the runs. Submit-to-running:
`--latency-jobs` jobs, one at a time on the UP partition, from the call to `submit` until the job's command writes
its first line (read from its output file), p50/p99; Slurm starts a job at its scheduler's next pass, not on
submission, so this is mostly the engine's own delay.
Through one agent (`--agent-jobs`, at most 500, 0 skips): a real `suanwang serve` and `suanwang agent` (slurmrestd
mode, its default 4 submit threads) on a cluster whose node declares 1024 CPUs, jobs/s from the first to the last
job the agent reported running, against bare POST loops of as many jobs right after, by 1 and by 4 threads.
Ray: through one real agent against a bare loop of Ray Jobs API submits (`benchmarks/bench_ray.py`, at most 20
jobs a run: each Ray job starts a process). On a shared machine, read the ratios rather than the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from engines.slurm_cluster import SlurmCluster  # noqa: E402

from suanwang.service.executors import ExecRequest  # noqa: E402
from suanwang.service.executors.slurm import SlurmExecutor  # noqa: E402

HELD = "held"  # a DOWN partition: jobs are accepted and wait
CHUNKS = 10  # each run alternates raw and executor in this many chunks


def rate(n: int, threads: int, one: Callable[[int], object]) -> float:
    """Jobs per second for n calls of `one(i)` shared by `threads` threads."""
    chunks = [range(t, n, threads) for t in range(threads)]
    workers = [threading.Thread(target=lambda c=c: [one(i) for i in c]) for c in chunks]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return n / (time.perf_counter() - t0)


def empty_queue(cluster: SlurmCluster) -> None:
    cluster.cli("scancel", "--quiet", f"--partition={HELD}", check=False)
    while cluster.cli("squeue", "-h", "-p", HELD, "-o", "%i").stdout.strip():
        time.sleep(0.1)


def slurm_throughput(cluster: SlurmCluster, jobs: int, reps: int, threads: int) -> dict:
    """Raw and executor submission rates (jobs/s) for slurmrestd and sbatch, medians over `reps`, and ratios."""
    rest_dir, cli_dir = cluster.workdir("nobody"), cluster.workdir("root")
    common = {"partition": HELD}
    ex_rest = SlurmExecutor.from_settings(
        {"mode": "rest", "rest_url": f"unix:{cluster.rest_socket}", "workdir": str(rest_dir), **common}
    )
    ex_cli = SlurmExecutor.from_settings(
        {"mode": "sbatch", "slurm_conf": str(cluster.conf), "workdir": str(cli_dir), **common}
    )
    raw = httpx.Client(
        transport=httpx.HTTPTransport(uds=str(cluster.rest_socket)), base_url="http://slurmrestd/slurm/v0.0.38"
    )
    body = {
        "script": "#!/bin/sh\ntrue\n",
        "job": {
            "name": "raw",
            "partition": HELD,
            "current_working_directory": str(rest_dir),
            "environment": {"PATH": "/usr/bin:/bin"},
        },
    }

    def raw_post(i: int, body: dict = body) -> None:
        r = raw.post("/job/submit", json=body)
        assert r.status_code == 200 and r.json().get("job_id"), r.text[:300]

    captured: dict = {}  # the executor's own request for one job, to post raw as well (what Slurm is asked)
    real_submit = ex_rest.api.submit
    ex_rest.api.submit = lambda script, job: captured.update(script=script, job=dict(job)) or real_submit(script, job)
    ex_rest.submit(ExecRequest("bench-sample", "true", 1, 0, 0.1))
    ex_rest.api.submit = real_submit
    same_body = {"script": captured["script"], "job": captured["job"]}

    def raw_same_job(i: int) -> None:
        raw_post(i, same_body)

    def raw_sbatch(i: int) -> None:
        subprocess.run(
            ["sbatch", "-Q", "-p", HELD, "-D", str(cli_dir), "-o", "/dev/null", "--wrap", "true"],
            env=cluster.env,
            check=True,
        )

    engine_s = {"rest": 0.0, "sbatch": 0.0}  # time inside the engine call, to tell the executor's own work apart
    own = {"rest": [0.0, 0], "sbatch": [0.0, 0]}  # executor wall time outside the engine call, jobs

    def timed(ex: SlurmExecutor, kind: str) -> None:
        submit = ex.api.submit

        def call(script: str, job: dict):
            t0 = time.perf_counter()
            try:
                return submit(script, job)
            finally:
                engine_s[kind] += time.perf_counter() - t0

        ex.api.submit = call

    timed(ex_rest, "rest")
    timed(ex_cli, "sbatch")

    def via(ex: SlurmExecutor, kind: str) -> Callable[[int], None]:
        def one(i: int) -> None:
            t0, e0 = time.perf_counter(), engine_s[kind]
            ref = ex.submit(ExecRequest(f"bench-{kind}-{time.monotonic_ns()}-{i}", "true", 1, 0, 0.1))
            own[kind][0] += (time.perf_counter() - t0) - (engine_s[kind] - e0)
            own[kind][1] += 1
            assert "@" in ref

        return one

    paths = {
        "rest": ([("raw", raw_post), ("raw_same_job", raw_same_job), ("executor", via(ex_rest, "rest"))], jobs),
        "sbatch": ([("raw", raw_sbatch), ("executor", via(ex_cli, "sbatch"))], max(20, jobs // 4)),  # fewer: processes
    }
    runs: dict[str, list[float]] = {f"{who}_{kind}": [] for kind, (ways, _) in paths.items() for who, _ in ways}
    ratios: dict[str, list[float]] = {"rest": [], "rest_same_job": [], "sbatch": []}
    for _ in range(reps):
        for kind, (ways, n) in paths.items():
            chunk = max(10, n // CHUNKS)
            spent = dict.fromkeys((who for who, _ in ways), 0.0)
            for c in range(0, n, chunk):  # the ways take turns chunk by chunk: drift on the machine hits all alike
                m = min(chunk, n - c)
                k = c // chunk % len(ways)
                for who, one in ways[k:] + ways[:k]:
                    spent[who] += m / rate(m, threads, one)
            for who in spent:
                runs[f"{who}_{kind}"].append(round(n / spent[who], 1))
            ratios[kind].append(spent["raw"] / spent["executor"])
            if "raw_same_job" in spent:
                ratios["rest_same_job"].append(spent["raw_same_job"] / spent["executor"])
            empty_queue(cluster)
    return {
        "runs_jobs_per_s": runs,
        "median_jobs_per_s": {k: statistics.median(v) for k, v in runs.items()},
        "ratio_rest": round(statistics.median(ratios["rest"]), 3),
        "ratio_sbatch": round(statistics.median(ratios["sbatch"]), 3),
        # against raw POSTs of exactly the executor's request (time limit, output file, environment, ...)
        "ratio_rest_same_job": round(statistics.median(ratios["rest_same_job"]), 3),
        # the executor's own work per job (folder, name, script; not the engine call), and the ratio it alone allows
        # against the raw rate of the same run: steadier than the measured ratio on a busy machine
        "executor_own_ms_per_job": {k: round(v[0] / max(1, v[1]) * 1000, 3) for k, v in own.items()},
        "ratio_bound_from_own_work": {
            k: round(1 / (1 + own[k][0] / max(1, own[k][1]) * statistics.median(runs[f"raw_{k}"])), 3) for k in own
        },
        "target": "executor >= 0.8 x raw; >= 200 jobs/s via slurmrestd",
    }


def slurm_latency(cluster: SlurmCluster, n: int) -> dict:
    """Submit-to-running (ms) for n jobs, one at a time: from the submit call until the command's first output."""
    out = {}
    for mode in ("rest", "sbatch"):
        s = {"mode": mode, "partition": cluster.partition}
        if mode == "rest":
            s |= {"rest_url": f"unix:{cluster.rest_socket}", "workdir": str(cluster.workdir("nobody"))}
        else:
            s |= {"slurm_conf": str(cluster.conf), "workdir": str(cluster.workdir("root"))}
        ex = SlurmExecutor.from_settings(s)
        lat = []
        for i in range(n):
            t0 = time.time()
            ref = ex.submit(ExecRequest(f"lat-{mode}-{i}-{time.monotonic_ns()}", "date +%s.%N", 1, 0, 0.1))
            deadline = time.monotonic() + 30
            while not (line := ex.logs(ref).strip()) and time.monotonic() < deadline:
                time.sleep(0.002)
            lat.append((float(line.split()[0]) - t0) * 1000)
            while ex.poll(ref).state == "running":  # one at a time: the node is free for the next
                time.sleep(0.01)
        q = statistics.quantiles(lat, n=100, method="inclusive")
        out[mode] = {
            "jobs": n,
            "p50_ms": round(statistics.median(lat), 1),
            "p99_ms": round(q[98], 1),
            "max_ms": round(max(lat), 1),
        }
    return out


def through_agent(jobs: int, tmp: Path) -> dict:
    """Placed -> engine-accepted through one real `suanwang agent` (slurmrestd mode) under a real `suanwang serve`:
    jobs/s from the first to the last job the agent reported running, against a bare loop of slurmrestd POSTs of as
    many running jobs right after. The node declares 1024 CPUs so that every job is placed at once."""
    from datetime import datetime

    from engines.platform import Platform, wait_for

    cluster = SlurmCluster(name="swagent", cpus=1024).start()
    p = Platform(tmp)
    try:
        p.only_engine_sites()
        workdir = cluster.workdir("nobody")
        settings = {"mode": "rest", "rest_url": f"unix:{cluster.rest_socket}", "workdir": str(workdir)}
        site = {"id": "bench-slurm", "name_zh": "bench", "name_en": "bench", "province_id": "henan"}
        site |= {"lat": 34.035771, "lon": 113.852454, "pue": 1.2, "cpu_cores": 4096, "engine": "slurm"}
        p.add_site({**site, "allow_commands": True, "engine_settings": settings})
        p.agents["bench-slurm"].terminate()  # replaced by one that claims everything, without a pause
        p.agents["bench-slurm"].wait(10)
        args = [str(Path(sys.executable).with_name("suanwang")), "agent", "--service", p.url, "--site", "bench-slurm"]
        args += ["--token-file", str(tmp / "bench-slurm.token"), "--interval-s", "0.05", "--limit", "1000"]
        beat = p.site("bench-slurm")["last_heartbeat"]
        agent = subprocess.Popen(args, stdout=open(tmp / "agent.log", "ab"), stderr=subprocess.STDOUT)
        p.agents["bench-slurm"] = agent
        # past the new agent's first pass (which looks every claimed job up in Slurm before submitting it)
        wait_for(lambda: p.site("bench-slurm")["last_heartbeat"] != beat, "the agent's first heartbeat")
        time.sleep(1.0)
        wait_for(lambda: p.site("bench-slurm")["cpu_free"] >= jobs, "room for every job")
        body = {"jobs": [{"origin": "许昌", "cpu_cores": 1, "runtime_h": 0.1, "command": "true"}] * jobs}
        t0 = time.time()
        ids = [j["id"] for j in p.call("POST", "/api/v1/jobs/batch", headers=p.tenant, json=body)["jobs"]]

        def all_started() -> list[dict] | None:
            page = p.call("GET", "/api/v1/jobs?limit=500", headers=p.tenant)["items"]
            mine = [j for j in page if j["id"] in set(ids)]
            return mine if len(mine) == len(ids) and all(j["started_at"] for j in mine) else None

        listed = wait_for(all_started, "every job to be started by the agent", timeout_s=300)
        started = sorted(datetime.fromisoformat(j["started_at"]).timestamp() for j in listed)
        agent_rate = (len(started) - 1) / max(1e-9, started[-1] - started[0])
        raw = httpx.Client(transport=httpx.HTTPTransport(uds=str(cluster.rest_socket)), base_url="http://slurmrestd")
        raw_body = {
            "script": "#!/bin/sh\ntrue\n",
            "job": {"name": "raw", "current_working_directory": str(workdir), "environment": {"PATH": "/usr/bin:/bin"}},
        }

        def raw_post(i: int) -> None:
            assert raw.post("/slurm/v0.0.38/job/submit", json=raw_body).json().get("job_id")

        raw_rate, raw_rate_4 = rate(jobs, 1, raw_post), rate(jobs, 4, raw_post)
        return {
            "jobs": jobs,
            "agent_jobs_per_s": round(agent_rate, 1),
            "raw_rest_jobs_per_s": round(raw_rate, 1),
            "ratio": round(agent_rate / raw_rate, 3),
            "raw_rest_4_threads_jobs_per_s": round(raw_rate_4, 1),
            "ratio_4_threads": round(agent_rate / raw_rate_4, 3),
            "submit_to_last_started_s": round(started[-1] - t0, 2),
            "agent": "suanwang agent --interval-s 0.05 --limit 1000 (4 submit threads)",
        }
    finally:
        p.close()
        cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=300, help="jobs per REST throughput run (sbatch runs: a quarter)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--latency-jobs", type=int, default=20)
    ap.add_argument("--agent-jobs", type=int, default=300, help="jobs (<= 500) through a real agent (0: skip)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    cluster = SlurmCluster(name="swbench", partitions={HELD: "DOWN"}).start()
    try:
        result = {
            "engine": "slurm " + cluster.cli("sinfo", "-V").stdout.strip(),
            "node_cpus": cluster.cpus,
            "threads": args.threads,
            "throughput": slurm_throughput(cluster, args.jobs, args.reps, args.threads),
            "submit_to_running": slurm_latency(cluster, args.latency_jobs) if args.latency_jobs >= 2 else None,
        }
    finally:
        cluster.stop()
    if args.agent_jobs:
        with tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp:
            result["through_agent_rest"] = through_agent(args.agent_jobs, Path(tmp))
    result["ray"] = "measured by benchmarks/bench_ray.py (the Ray executor's own benchmark)"
    result["load_avg_1m"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
