"""`suanwang sweep`: the grid, identical per-run results on one worker, on two, and on a two-node Ray cluster,
failed runs reported with their cause while the others finish."""

import json
import os
import sys

import pytest
from typer.testing import CliRunner

from suanwang.cli.main import app
from suanwang.planner.sweep import SweepFile, aggregate, grid, run_sweep

runner = CliRunner()
SMALL = {"policies": ["local-only", "online"], "seeds": 2, "days": [0.5], "jobs": 150}


def _strip(results):
    return [{k: v for k, v in r.items() if k != "pid"} for r in results]


def test_grid_is_the_product():
    specs = grid(
        SweepFile(scenarios=["national"], policies=["local-only", "online", "cheapest"], seeds=[3, 4], days=[1, 2])
    )
    assert len(specs) == 3 * 2 * 2
    assert {s.seed for s in specs} == {3, 4}


def test_one_worker_and_two_give_the_same_runs():
    specs = grid(SweepFile(**SMALL))
    one = run_sweep(specs, workers=1)
    two = run_sweep(specs, workers=2)
    assert all(r["ok"] for r in one)
    assert _strip(one) == _strip(two)
    agg = aggregate(one)
    assert [(r["policy"], r["runs"]) for r in agg] == [("local-only", 2), ("online", 2)]


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsites:\n  - id: x\n    pue: 0.5\n", encoding="utf-8")
    specs = grid(SweepFile(**{**SMALL, "scenarios": ["national", str(bad)], "policies": ["local-only"]}))
    res = run_sweep(specs, workers=2)
    failed = [r for r in res if not r["ok"]]
    assert len(failed) == 2 and all("ScenarioError" in r["error"] and "pue" in r["error"] for r in failed)
    assert sum(r["ok"] for r in res) == 2
    agg = aggregate(res)
    assert [r["failed"] for r in agg] == [0, 2]


def test_cli_sweep_json_and_bad_input(tmp_path):
    res = runner.invoke(
        app,
        [
            "sweep",
            "--policies",
            "local-only",
            "--seeds",
            "2",
            "--days",
            "0.5",
            "--jobs",
            "100",
            "--json",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["runs"]) == 2 and out["aggregate"][0]["runs"] == 2
    assert (tmp_path / "aggregate.csv").exists() and (tmp_path / "runs.json").exists()
    bad = runner.invoke(app, ["sweep", "--policies", "fastest"])
    assert bad.exit_code == 2 and "--policies: 'fastest' is not a policy" in bad.output
    missing = runner.invoke(app, ["sweep", "--scenarios", "nowhere.yaml"])
    assert missing.exit_code == 2 and "nowhere.yaml" in missing.output


def test_ray_two_nodes_give_the_same_runs():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(
            address=cluster.address,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}},
        )
        specs = grid(SweepFile(**SMALL))
        on_ray = run_sweep(specs, ray_address=cluster.address)
        assert len(ray.nodes()) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert _strip(on_ray) == _strip(run_sweep(specs, workers=1))
