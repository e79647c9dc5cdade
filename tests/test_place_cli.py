"""`suanwang place` through typer's CliRunner: tables, JSON totals, CSV output, --explain and clean errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from suanwang.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
JOBS = str(EXAMPLES / "jobs-demo.csv")
runner = CliRunner()


def place(*args: str):
    return runner.invoke(app, ["place", "--jobs", JOBS, *args])


@pytest.mark.parametrize("policy", ["online", "local-only", "nearest", "cheapest", "greenest", "round-robin"])
def test_json_totals_add_up(policy):
    r = place("--policy", policy, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    meta, rows = out["meta"], out["rows"]
    assert meta["jobs"] == len(rows) == meta["placed"] + meta["queued"] + meta["rejected"]
    placed = [row for row in rows if row["status"] == "placed"]
    assert meta["placed"] == len(placed) > 0
    assert meta["cost_cny"] == pytest.approx(sum(row["cost_cny"] for row in placed), abs=0.05)
    assert meta["carbon_kg"] == pytest.approx(sum(row["carbon_kg"] for row in placed), abs=0.01)
    for row in rows:
        assert row["status"] == "placed" or row["reason"]


def test_core_job_lands_on_gov_cloud_of_its_province():
    rows = {row["job"]: row for row in json.loads(place("--json").output)["rows"]}
    assert rows["gov-zz-1"]["site"] == "henan-dc"
    assert rows["trade-sh-1"]["site"] == "shanghai-dc"


def test_tenant_policy_file_is_obeyed():
    r = place("--policy-file", str(EXAMPLES / "policy-bank.yaml"), "--json")
    rows = {row["job"]: row for row in json.loads(r.output)["rows"]}
    assert rows["med-wh-1"]["site"] == "hubei-dc"


def test_explain_lists_every_site_with_reasons():
    r = place("--explain", "gov-zz-1", "--json")
    ex = json.loads(r.output)["explain"]
    verdicts = ex["verdicts"]
    assert len(verdicts) == 42
    assert [v["site"] for v in verdicts if v["verdict"] == "chosen"] == ["henan-dc"]
    assert all(v["reason"] for v in verdicts if v["verdict"] == "rejected")
    assert any(v["reason"].startswith("residency R3") for v in verdicts)
    table = place("--explain", "gov-zz-1")
    assert table.exit_code == 0 and "verdicts for job gov-zz-1" in table.output


def test_weights_change_the_choice_and_csv_is_written(tmp_path):
    out = tmp_path / "p.csv"
    latency = json.loads(place("--weights", "cost=0,carbon=0,latency=1", "--json", "--csv", str(out)).output)
    green = json.loads(place("--weights", "cost=0,carbon=1,latency=0", "--json").output)
    assert latency["meta"]["carbon_kg"] >= green["meta"]["carbon_kg"]
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["job"] for r in rows] == [r["job"] for r in latency["rows"]]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--policy", "cheapst"], "did you mean cheapest"),
        (["--weights", "speed=1"], "'speed'"),
        (["--explain", "gov-zz-9"], "gov-zz-1"),
        (["--policy-file", "missing.yaml"], "missing.yaml"),
        (["--policy", "nearest", "--weights", "cost=1"], "online policy"),
        (["--policy", "batch-lp"], "plans windows of jobs"),
    ],
)
def test_errors_are_clean(args, words):
    r = place(*args)
    assert r.exit_code == 2
    assert "Traceback" not in r.output and words in r.output


def test_bad_job_file_names_row_and_field(tmp_path):
    p = tmp_path / "jobs.csv"
    p.write_text("id,origin,latency_class\na,北京,fast\n", encoding="utf-8")
    r = runner.invoke(app, ["place", "--jobs", str(p)])
    assert r.exit_code == 2
    assert "jobs.csv, row 2, field 'latency_class'" in r.output


def test_scenario_sites_take_part():
    r = place("--scenario", str(EXAMPLES / "scenario-xuchang-hub.yaml"), "--explain", "llm-xc-1", "--json")
    assert r.exit_code == 0, r.output
    verdicts = json.loads(r.output)["explain"]["verdicts"]
    assert len(verdicts) > 42  # the scenario adds a site to the national 42
