"""The simulator's residency audit reads the policy's text itself (sim/audit.py): it reports a forbidden placement
injected into a run, agrees with the policy loader and shield on random policy files, and catches a loader
broken to allow everything."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import suanwang.policy.loader as loader
from suanwang.atlas import load_atlas
from suanwang.policy import ResidencyRules, load_rules, parse_rules
from suanwang.scheduler import SchedulerContext
from suanwang.sim.audit import NATIONAL_POLICY, allows, read_policy, rules_text
from suanwang.sim.metrics import summarise
from suanwang.sim.simulator import Simulation
from suanwang.workload.job import Job

DATA_CLASSES = ["public", "internal", "sensitive", "core"]
TENANTS = ["public", "bank-a", "hospital"]


@cache
def atlas():
    return load_atlas()


@cache
def national_ctx() -> SchedulerContext:
    return SchedulerContext.build(atlas())


def _sensitive_jobs(n: int) -> list[Job]:
    """Sensitive-data batch jobs from Beijing: the national rules keep them on sites in Beijing."""
    bj = atlas().place("北京")
    return [
        Job(
            id=f"s{i}",
            origin=bj.adcode,
            origin_province=bj.province_id,
            cpu_cores=16,
            runtime_h=2.0,
            submit_h=0.05 * i,
            data_class="sensitive",
        )
        for i in range(n)
    ]


def _write(text: str) -> Path:
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8")
    f.write(text)
    f.close()
    return Path(f.name)


def test_the_national_text_is_the_shipped_example():
    example = Path(__file__).resolve().parents[1] / "examples" / "policy-national.yaml"
    assert yaml.safe_load(NATIONAL_POLICY) == yaml.safe_load(example.read_text(encoding="utf-8"))


def test_a_forbidden_placement_injected_into_a_run_is_reported():
    ctx = national_ctx()
    run = Simulation(ctx, _sensitive_jobs(6), "online", horizon_h=12).run()
    assert summarise(run, ctx, 2022)["totals"]["residency_violations"] == 0
    job = int(run.segments.column("job")[0])
    far = next(k for k, s in enumerate(ctx.sites) if s.province_id != run.jobs[job].data_province)
    run.segments.rows[1] = float(far)  # the first run's site field: a site outside the data province
    assert summarise(run, ctx, 2022)["totals"]["residency_violations"] == 1


def _province_names():
    out = []
    for p in sorted(atlas().provinces.values(), key=lambda p: p.id)[:8]:
        out += [p.id, p.name_zh, p.name_en]
    return out


_RULE = st.fixed_dictionaries(
    {
        "data_classes": st.lists(st.sampled_from(DATA_CLASSES), unique=True, max_size=3),
        "tenants": st.lists(st.sampled_from(TENANTS), unique=True, max_size=2),
        "within": st.one_of(
            st.none(),
            st.sampled_from(["mainland", "data-province"]),
            st.lists(st.sampled_from(_province_names()), min_size=1, max_size=4),
        ),
        "labels": st.lists(st.sampled_from(["ai", "gov-cloud", "national", "provincial"]), unique=True, max_size=2),
        "sites": st.lists(
            st.sampled_from([s.id for s in atlas().sites[:10]] + [atlas().sites[12].name_zh]), unique=True, max_size=3
        ),
    }
)


def _policy(rules: list[dict]) -> str:
    entries = []
    for n, r in enumerate(rules):
        entry = {"id": f"P{n}"}
        entry.update({k: v for k, v in r.items() if v})
        if not any(k in entry for k in ("within", "labels", "sites")):
            entry["within"] = "mainland"  # the loader refuses a rule that constrains nothing
        entries.append(entry)
    return yaml.safe_dump({"name": "random", "rules": entries}, allow_unicode=True, sort_keys=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_RULE, min_size=1, max_size=4))
def test_the_audit_agrees_with_the_loader_on_random_policy_files(rules):
    text = _policy(rules)
    path = _write(text)
    try:
        loaded = load_rules(path, atlas())
    finally:
        path.unlink()
    assert rules_text(loaded) == text
    in_code = ResidencyRules(parse_rules(yaml.safe_load(text), atlas()).rules, name="in-code")  # no file text
    mainland = frozenset(atlas().provinces)
    shield = loaded.bind(atlas().sites, set(mainland))
    from_file, written_out = read_policy(text, atlas()), read_policy(rules_text(in_code), atlas())
    for dc in DATA_CLASSES:
        for tenant in TENANTS:
            for prov in ("beijing", "guizhou", "shanghai"):
                mask = shield.allowed(dc, prov, tenant)
                for k, site in enumerate(atlas().sites):
                    assert allows(from_file, dc, tenant, prov, site, mainland) == bool(mask[k]), (
                        dc,
                        tenant,
                        prov,
                        site.id,
                    )
                    assert allows(written_out, dc, tenant, prov, site, mainland) == bool(mask[k])


def test_a_loader_broken_to_allow_everything_is_caught(monkeypatch):
    path = _write(NATIONAL_POLICY)
    try:
        jobs = _sensitive_jobs(40)
        honest = SchedulerContext.build(atlas(), rules=load_rules(path, atlas()))
        run = Simulation(honest, jobs, "greenest", horizon_h=12).run()
        assert summarise(run, honest, 2022)["totals"]["residency_violations"] == 0

        def allow_everything(raw, atlas, file="policy"):
            return ResidencyRules((), name=file)  # every rule dropped: the shield allows every site

        monkeypatch.setattr(loader, "parse_rules", allow_everything)
        broken = SchedulerContext.build(atlas(), rules=load_rules(path, atlas()))
        assert broken.rules.rules == ()
        run = Simulation(broken, jobs, "greenest", horizon_h=12).run()
        outside = sum(
            broken.sites[s].province_id != "beijing" for s in run.segments.column("site").tolist()
        )  # the scheduler, trusting the broken rules, sends sensitive data out of Beijing
        assert outside > 0
        assert summarise(run, broken, 2022)["totals"]["residency_violations"] == outside
    finally:
        path.unlink()
