"""Loading jobs from CSV, JSON and dicts; every bad value names the file, the row and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suanwang.errors import JobError
from suanwang.workload.io import FIELDS, job_to_dict, jobs_from_dicts, load_jobs
from suanwang.workload.job import DataClass, LatencyClass

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEADER = "id,origin,latency_class,cpu_cores,runtime_h"


def write_csv(tmp_path, lines: list[str], name="jobs.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_example_jobs_load_and_resolve(atlas):
    jobs = load_jobs(EXAMPLES / "jobs-demo.csv", atlas)
    assert len(jobs) == len({j.id for j in jobs}) > 10
    by_id = {j.id: j for j in jobs}
    assert by_id["render-sh-1"].origin == by_id["render-sh-2"].origin == atlas.place("上海").adcode
    assert by_id["gov-zz-1"].data_province == "henan" and by_id["gov-zz-1"].data_class == DataClass.CORE
    assert by_id["infer-sz-1"].latency_class == LatencyClass.REALTIME
    assert by_id["trade-sh-1"].latency_bound_ms == 3.0
    assert by_id["llm-xc-1"].labels == ("ai",)


def test_bad_latency_class_names_row_and_field(atlas, tmp_path):
    lines = [HEADER] + [f"j{k},北京,batch,1,1" for k in range(5)] + ["j5,北京,fast,1,1"]
    with pytest.raises(JobError) as e:
        load_jobs(write_csv(tmp_path, lines), atlas)
    msg = str(e.value)
    assert msg.startswith("jobs.csv, row 7, field 'latency_class': 'fast' is not one of realtime, interactive, batch")
    assert e.value.row == 7


def test_comment_lines_keep_row_numbers_of_the_file(atlas, tmp_path):
    lines = ["# a comment", HEADER, "a,北京,batch,1,1", "b,北京,batch,x,1"]
    with pytest.raises(JobError) as e:
        load_jobs(write_csv(tmp_path, lines), atlas)
    assert (e.value.row, e.value.field) == (4, "cpu_cores")


def test_unknown_origin_suggests_names(atlas, tmp_path):
    with pytest.raises(JobError) as e:
        load_jobs(write_csv(tmp_path, [HEADER, "a,Zhengzou,batch,1,1"]), atlas)
    assert e.value.field == "origin" and "Did you mean" in str(e.value) and "Zhengzhou" in str(e.value)


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ({"id": "a", "origin": "北京", "runtime_h": "0"}, "runtime_h", "> 0"),
        ({"id": "a", "origin": "北京", "runtime_h": "nan"}, "runtime_h", "not a finite number"),
        ({"id": "a", "origin": "北京", "cpu_cores": "2.5"}, "cpu_cores", "whole number"),
        ({"id": "a", "origin": "北京", "cpu_cores": 0}, "cpu_cores", "no cores and no cards"),
        ({"id": "a", "origin": "北京", "gpu_cards": -1}, "gpu_cards", ">= 0"),
        ({"id": "a", "origin": "北京", "data_class": "secret"}, "data_class", "public, internal, sensitive, core"),
        ({"id": "a", "origin": "北京", "data_province": "atlantis"}, "data_province", "atlantis"),
        ({"id": "a", "origin": "北京", "deadline_h": 0.5}, "deadline_h", "before"),
        ({"id": "a", "origin": "北京", "max_latency_ms": 0}, "max_latency_ms", "> 0"),
        ({"id": "a", "origin": "北京", "cpu": 4}, "cpu", "did you mean 'cpu_cores'"),
        ({"origin": "北京"}, "id", "missing"),
        ({"id": "a"}, "origin", "missing"),
    ],
)
def test_bad_fields_are_named(atlas, row, field, words):
    with pytest.raises(JobError) as e:
        jobs_from_dicts([{"id": "ok", "origin": "上海"}, row], atlas, "x.json")
    assert (e.value.file, e.value.row, e.value.field) == ("x.json", 2, field)
    assert words in str(e.value)


def test_duplicate_ids_are_rejected(atlas):
    with pytest.raises(JobError, match="repeats row 1"):
        jobs_from_dicts([{"id": "a", "origin": "上海"}, {"id": "a", "origin": "北京"}], atlas)


def test_json_list_or_object_and_round_trip(atlas, tmp_path):
    rows = [{"id": "a", "origin": "郑州", "gpu_cards": 2, "labels": ["ai"], "data_province": "河南"}]
    for payload in (rows, {"jobs": rows}):
        p = tmp_path / "jobs.json"
        p.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        (job,) = load_jobs(p, atlas)
        assert job.origin == "410100" and job.data_province == "henan" and job.gpu_cards == 2
        assert job.labels == ("ai",)
    again = jobs_from_dicts([job_to_dict(job)], atlas)[0]
    assert again == job
    assert set(job_to_dict(job)) == set(FIELDS)


def test_bad_json_and_bad_suffix(atlas, tmp_path):
    p = tmp_path / "jobs.json"
    p.write_text("[{", encoding="utf-8")
    with pytest.raises(JobError, match="not valid JSON"):
        load_jobs(p, atlas)
    q = tmp_path / "jobs.txt"
    q.write_text("x", encoding="utf-8")
    with pytest.raises(JobError, match=".csv or .json"):
        load_jobs(q, atlas)
