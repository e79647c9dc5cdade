"""`suanwang simulate`: a small run end to end, and option errors without tracebacks."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from suanwang.cli.main import app

runner = CliRunner()


def test_small_run_writes_results_tables_and_report(tmp_path):
    out = tmp_path / "r"
    res = runner.invoke(
        app,
        [
            "simulate",
            "--days",
            "0.25",
            "--jobs",
            "150",
            "--policies",
            "local-only,online",
            "--out",
            str(out),
            "--workers",
            "1",
            "--outage",
            "guian:1:3",
            "--cut",
            "beijing:horinger:0:2",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert list(data["policies"]) == ["local-only", "online"]
    assert data["meta"]["jobs"] == 150 and data["meta"]["seed"] == 1
    for t in (p["totals"] for p in data["policies"].values()):
        assert t["done"] + t["failed"] + t["rejected"] == 150
        assert t["residency_violations"] == 0
    assert (out / "flows.csv").is_file() and (out / "report.html").is_file()
    assert "local-only" in res.output
    assert data["meta"]["card_core_equivalent"] == 50.0  # 400 W per card / 8 W per core
    for p in data["policies"].values():
        assert abs(p["totals"]["card_hours"] - sum(r["card_hours"] for r in p["site_load"])) < 0.1
    assert "per core-equivalent hour" in " ".join(res.output.split()), "the table says what its ratios are per"


def test_trace_replay(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "id,origin,cpu_cores,runtime_h,submit_h,input_gb\na,北京,4,1,0.5,2\nb,成都,8,2,1,0\n", encoding="utf-8"
    )
    res = runner.invoke(
        app, ["simulate", "--trace", str(f), "--days", "0.1", "--policies", "nearest", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))
    assert data["policies"]["nearest"]["totals"]["done"] == 2


def test_bad_options_give_a_clear_error_and_exit_2(tmp_path):
    for args, needle in [
        (["--policies", "fastest"], "fastest"),
        (["--lang", "fr"], "--lang"),
        (["--outage", "guian-1-3"], "--outage"),
        (["--cut", "beijing:nowhere:0:1"], "nowhere"),
        (["--days", "0"], "--days"),
    ]:
        res = runner.invoke(app, ["simulate", "--jobs", "10", "--out", str(tmp_path), *args])
        assert res.exit_code == 2, (args, res.output)
        assert needle in res.output and "Traceback" not in res.output
