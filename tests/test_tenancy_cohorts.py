"""Cohorts and borrowing: the file, a hand-built reclaim, borrowed core-hours, and the property that a tenant
never passes its quota except by borrowing within its limit while its cohort-mates' room is idle, and that an
owner never waits for room it lent (reclaimed in the same pass). Usage is recomputed from the run's records."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tenancy_helpers import atlas, context_of, shanghai_job

from suanwang.errors import PolicyError
from suanwang.policy.quotas import QuotaRule, Tenancy, parse_tenancy
from suanwang.scheduler import SchedulerContext
from suanwang.sim.records import DONE
from suanwang.sim.simulator import Simulation
from suanwang.workload.job import Job


def one_site() -> SchedulerContext:
    """Shanghai's data centre alone (49,600 cores): the quotas below bind long before its capacity."""
    return context_of("shanghai-dc")


def job(i: int, tenant: str, cores: int, runtime_h: float = 1.0, submit_h: float = 0.0, **kw) -> Job:
    return shanghai_job(f"{tenant}-{i}", tenant, cores, runtime_h, submit_h, **kw)


def runs(run, jobs):
    """(job, start_h, end_h) of every run, from the segments and the eviction records (an evicted run ends at its
    eviction, a job's last run at its end)."""
    ev: dict[int, list[float]] = {}
    for e in run.evictions:
        ev.setdefault(e.job, []).append(e.at_h)
    seen: dict[int, int] = {}
    out = []
    for j, s in zip(run.segments.job.tolist(), run.segments.start_h.tolist(), strict=True):
        k = seen[j] = seen.get(j, -1) + 1
        end = ev[j][k] if k < len(ev.get(j, ())) else float(run.end_h[j])
        out.append((j, s, end))
    return out


# --- the file ----------------------------------------------------------------------------------------------
def test_cohorts_and_borrow_limits_read_from_the_file():
    raw = {
        "cohorts": {"finance": ["bank-a", "bank-b"]},
        "quotas": [
            {"id": "Q1", "tenant": "bank-a", "cores": 100, "borrow_cores": 50},
            {"id": "Q2", "tenant": "bank-b", "cores": 200, "cards": 4, "borrow_cards": 2},
        ],
    }
    t = parse_tenancy(raw, atlas(), "t.yaml")
    assert t.cohorts == {"finance": ("bank-a", "bank-b")} and t.cohort("bank-b") == "finance"
    assert t.cohort("lab") is None
    assert t.rules[0].borrow_cores == 50 and t.rules[1].borrow_cards == 2 and t.rules[1].borrow_cores == 0


@pytest.mark.parametrize(
    "raw, where",
    [
        ({"quotas": [{"id": "Q1", "tenant": "a", "cores": 1, "borrow_cores": 5}]}, "row 1, field 'borrow_cores'"),
        (
            {"cohorts": {"k": ["a"]}, "quotas": [{"id": "Q1", "tenant": "a", "cores": 1, "borrow_cards": 1}]},
            "row 1, field 'borrow_cards'",
        ),
        ({"cohorts": {"k": ["a"]}, "quotas": [{"id": "Q1", "tenant": "a", "cores": 1, "borrow_cores": -1}]}, "row 1"),
        ({"cohorts": {"k": ["a"], "j": ["a"]}}, "field 'cohorts.j'"),
        ({"cohorts": {"k": "a"}}, "field 'cohorts.k'"),
        ({"cohorts": ["a"]}, "field 'cohorts'"),
    ],
)
def test_bad_cohort_rows_name_row_and_field(raw, where):
    with pytest.raises(PolicyError) as e:
        parse_tenancy(raw, atlas(), "t.yaml")
    msg = str(e.value)
    assert msg.startswith("t.yaml") and where in msg and "\n" not in msg and " - " in msg


# --- a hand-built reclaim --------------------------------------------------------------------------------------
def test_borrowed_room_is_reclaimed_in_the_same_pass():
    """a (cap 100, may borrow 100) runs two 100-core jobs from 0 h, the second on b's idle room; b's 60-core job
    at 1 h finds its room lent out: a's most recent job is evicted at 1 h and b starts at once."""
    rules = (QuotaRule("QA", "a", cores=100, borrow_cores=100), QuotaRule("QB", "b", cores=100))
    tenancy = Tenancy("t", {}, rules, cohorts={"fin": ("a", "b")})
    jobs = [job(0, "a", 100, 10.0, 0.0), job(1, "a", 100, 10.0, 0.01), job(2, "b", 60, 2.0, 1.0)]
    run = Simulation(one_site(), jobs, "online", horizon_h=30, tenancy=tenancy).run()
    assert [s for s in run.status] == [DONE, DONE, DONE]
    (e,) = run.evictions
    assert e.job == 1 and e.at_h == pytest.approx(1.0) and e.rule == "R1"
    assert e.why == "reclaimed by job b-2 of tenant b: quota QB room lent to a in cohort fin, rule R1"
    starts = {j: s for j, s, _ in runs(run, jobs)}
    assert starts[2] == pytest.approx(1.0)
    # a's evicted job waits for b's room: pool 100 + 60 + 100 > 200 until b ends at 3 h, then borrows again
    spans = runs(run, jobs)
    got = sorted((round(s, 3), j, round(t, 3)) for j, s, t in spans)
    assert got == [(0.0, 0, 10.0), (0.01, 1, 1.0), (1.0, 2, 3.0), (3.0, 1, 13.0)]
    # borrowed core-hours: 100 cores over [0.01, 1) and again over [3, 10) (from 10 h a holds only its own)
    assert run.borrowed["a"][0] == pytest.approx(100 * 0.99 + 100 * 7.0)
    assert e.lost_h == pytest.approx(0.99) and e.saved_h == 0.0


# --- the property --------------------------------------------------------------------------------------------
CAPS = {"a": 300, "b": 200, "c": 250}  # a and b share the cohort; c stands alone


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    borrow=st.tuples(st.integers(0, 300), st.integers(0, 300)),
    size=st.fixed_dictionaries({t: st.integers(20, 200) for t in CAPS}),
    shapes=st.lists(
        st.tuples(st.sampled_from(sorted(CAPS)), st.floats(0.2, 4.0), st.floats(0.0, 6.0)), min_size=1, max_size=25
    ),
)
def test_borrowing_stays_in_limits_and_is_reclaimed_within_one_pass(borrow, size, shapes):
    rules = (
        QuotaRule("QA", "a", cores=CAPS["a"], borrow_cores=borrow[0]),
        QuotaRule("QB", "b", cores=CAPS["b"], borrow_cores=borrow[1]),
        QuotaRule("QC", "c", cores=CAPS["c"]),
    )
    limit = {"a": CAPS["a"] + borrow[0], "b": CAPS["b"] + borrow[1], "c": CAPS["c"]}
    tenancy = Tenancy("t", {}, rules, cohorts={"fin": ("a", "b")})
    jobs = sorted((job(i, t, size[t], rt, sub) for i, (t, rt, sub) in enumerate(shapes)), key=lambda j: j.submit_h)
    run = Simulation(one_site(), jobs, "online", horizon_h=8, tenancy=tenancy).run()
    assert all(s == DONE for s in run.status)
    spans = runs(run, jobs)
    times = sorted({t for _, s, e in spans for t in (s, e)} | {j.submit_h for j in jobs})

    def used(tenant: str, t: float) -> int:
        return sum(jobs[j].cpu_cores for j, s, e in spans if jobs[j].tenant == tenant and s <= t < e)

    for t in times:
        u = {x: used(x, t) for x in CAPS}
        for x in CAPS:
            assert u[x] <= limit[x], (x, t, u)  # never past its cap plus its borrow limit
        assert u["a"] + u["b"] <= CAPS["a"] + CAPS["b"], (t, u)  # borrowing only the cohort's idle room
    # nobody waits while its own cap holds the job: lent room comes back in the same pass
    waits = []
    by_job: dict[int, list[tuple[float, float]]] = {}
    for j, s, e in sorted(spans, key=lambda r: r[1]):
        by_job.setdefault(j, []).append((s, e))
    for j, rs in by_job.items():
        gaps = [(jobs[j].submit_h, rs[0][0])] + [(rs[k][1], rs[k + 1][0]) for k in range(len(rs) - 1)]
        waits += [(j, a, b) for a, b in gaps if b > a]
    for j, a, b in waits:
        tenant = jobs[j].tenant
        for t in [a, *(x for x in times if a < x < b)]:
            assert used(tenant, t) + jobs[j].cpu_cores > CAPS[tenant], (j, tenant, t, used(tenant, t))
    # each eviction took a job of a tenant then over its own cap
    for e in run.evictions:
        assert e.rule == "R1" and jobs[e.job].tenant in ("a", "b")


def test_the_book_records_borrowed_room_and_says_when_room_is_lent_out():
    from suanwang.scheduler import ClusterState
    from suanwang.scheduler.quotas import QuotaBook, west_hubs

    c = one_site()
    rules = (QuotaRule("QA", "a", cores=100, borrow_cores=50), QuotaRule("QB", "b", cores=100))
    book = QuotaBook(Tenancy("t", {}, rules, cohorts={"fin": ("a", "b")}), c.sites, west_hubs(c.atlas.hubs))
    state = ClusterState.from_sites(c.sites, book)
    state.reserve(0, job(0, "a", 100))
    state.reserve(0, job(1, "a", 40))  # 40 borrowed from b's idle room
    assert book.usage()["QA"] == {"cores": 140, "cards": 0, "borrowed_cores": 40, "borrowed_cards": 0}
    assert book.room(job(2, "a", 10)) is None  # 150 = cap + borrow limit, pool 150 <= 200
    assert book.room(job(2, "a", 11)).tolist() == [False]  # past its borrow limit
    assert not book.lent_rules(job(3, "b", 60))  # b's 60 + a's 140 = 200: still within the pool
    b = job(4, "b", 61)
    assert [x.rule.id for x in book.lent_rules(b)] == ["QB"] and book.only_lent(b, 0)
    assert book.breaking(b, 0).rule.id == "QB" and book.lent_mask(b).tolist() == [True]
    state.release(0, job(1, "a", 40))
    assert book.usage()["QA"]["borrowed_cores"] == 0 and not book.lent_rules(b)
