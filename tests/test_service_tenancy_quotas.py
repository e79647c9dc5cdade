"""The service enforces the tenancy document: quotas from the placed and running jobs (rebuilt on restart), the
fair-share order from the holds ledger, GET/PUT /quotas and GET /usage by role (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_service_fixtures import *  # noqa: F403 - fixtures
from test_service_fixtures import build_world, make_service

from suanwang.service.db import AuditEvent, JobRow

SUANWANG = str(Path(sys.executable).with_name("suanwang"))  # the installed console script
ONE_SITE = "beijing-dc"
BODY = {"origin": "北京", "cpu_cores": 8, "runtime_h": 2, "latency_class": "batch", "data_class": "public"}
DOC = {
    "name": "two",
    "half_life_h": 10,
    "tenants": {"acme": 1, "beta": 1},
    "quotas": [
        {"id": "A1", "tenant": "acme", "cores": 16, "description": "acme: two jobs at once"},
        {"id": "B1", "tenant": "beta", "cards": 1, "within": ["west"]},
    ],
}


def one_site(svc, cores: int = 64) -> None:
    """Only the Beijing site, with `cores` cores and no cards."""
    from suanwang.service.db import SiteRow

    with svc.sessions() as s, s.begin():
        s.execute(sa.delete(SiteRow).where(SiteRow.id != ONE_SITE))
        s.execute(sa.update(SiteRow).values(cpu_cores=cores, gpu_cards=0))


def states(svc) -> dict[str, str]:
    with svc.sessions() as s:
        return dict(s.execute(sa.select(JobRow.id, JobRow.state)).all())


def submit(w, headers, n: int = 1, **extra) -> list[str]:
    out = []
    for _ in range(n):
        r = w.client.post("/api/v1/jobs", json=dict(BODY, **extra), headers=headers)
        assert r.status_code == 201, r.text
        out.append(r.json()["id"])
    return out


def end(svc, ids) -> None:
    """What the executor reports: these runs are over."""
    with svc.sessions() as s, s.begin():
        s.execute(sa.update(JobRow).where(JobRow.id.in_(list(ids))).values(state="done"))


def test_quotas_hold_and_survive_a_restart(db_url, tmp_path):
    svc = make_service(db_url, tmp_path)
    w = build_world(svc)
    one_site(svc)
    assert w.client.put("/api/v1/quotas", json=DOC, headers=w.operator).status_code == 200
    ids = submit(w, w.acme, 3)
    svc.loop.clock = lambda: 100.0
    svc.loop.place()
    got = states(svc)
    assert sorted(got[j] for j in ids) == ["placed", "placed", "queued"]
    waiting = next(j for j in ids if got[j] == "queued")
    reason = w.client.get(f"/api/v1/jobs/{waiting}", headers=w.acme).json()["reason"]
    assert "no free capacity now" in reason  # waits (the quota's room may come back), is not rejected
    verdicts = w.client.get(f"/api/v1/jobs/{waiting}/placement", headers=w.acme).json()["verdicts"]
    assert verdicts[0]["reason"].startswith("quota A1: tenant acme at most 16 cores nationally; 16 cores 0 cards")
    svc.close()

    svc = make_service(db_url, tmp_path)  # a restart: the usage comes back from the placed jobs
    w = build_world_again(svc)
    svc.loop.clock = lambda: 101.0
    svc.loop.place()
    assert states(svc)[waiting] == "queued"
    end(svc, [j for j in ids if j != waiting][:1])
    svc.loop.place()
    assert states(svc)[waiting] == "placed"
    usage = w.client.get("/api/v1/usage", headers=w.admin).json()
    acme = next(t for t in usage["tenants"] if t["tenant"] == "acme")
    assert acme["cores_in_use"] == 16 and acme["quotas"][0] == {
        "id": "A1",
        "rule": "at most 16 cores nationally",
        "cores": 16,
        "cards": None,
        "cores_in_use": 16,
        "cards_in_use": 0,
    }
    svc.close()


def build_world_again(svc):
    """Clients for a restarted service on a database that already has the tenants (new tokens)."""
    from fastapi.testclient import TestClient
    from test_service_fixtures import ADMIN_TOKEN, World, auth

    from suanwang.service import create_app

    client = TestClient(create_app(svc))
    admin = auth(ADMIN_TOKEN)
    heads = []
    for body in ({"role": "tenant", "tenant": "acme"}, {"role": "tenant", "tenant": "beta"}, {"role": "operator"}):
        r = client.post("/api/v1/tokens", json=body, headers=admin)
        heads.append(auth(r.json()["token"]))
    return World(svc, client, admin, heads[2], heads[0], heads[1])


def test_fair_share_tries_the_least_served_tenant_first_and_survives_a_restart(db_url, tmp_path):
    svc = make_service(db_url, tmp_path)
    w = build_world(svc)
    one_site(svc, cores=8)  # room for one job at a time
    assert w.client.put("/api/v1/quotas", json=dict(DOC, quotas=[]), headers=w.admin).status_code == 200
    first = submit(w, w.acme)
    svc.loop.clock = lambda: 0.0
    svc.loop.place()  # acme runs over [0, 2)
    end(svc, first)
    older = submit(w, w.acme)  # acme's job is older, same priority...
    newer = submit(w, w.beta)
    svc.loop.clock = lambda: 2.0
    svc.loop.place()
    got = states(svc)
    assert got[newer[0]] == "placed" and got[older[0]] == "queued"  # ...but beta has used nothing
    # the oracle: acme held 8 cores over [0, 2) of 8 on offer; H = 10 h, T = H / ln 2
    t_mean = 10 / math.log(2)
    u_acme = 8 * t_mean * (1 - 2 ** (-2 / 10))
    svc.close()
    svc = make_service(db_url, tmp_path)
    w = build_world_again(svc)
    one_site(svc, cores=8)  # a start seeds the atlas sites again
    svc.loop.clock = lambda: 2.0
    usage = {t["tenant"]: t for t in w.client.get("/api/v1/usage", headers=w.admin).json()["tenants"]}
    assert usage["acme"]["core_h_decayed"] == pytest.approx(u_acme, rel=1e-9)
    assert usage["acme"]["fair_share"] == pytest.approx(u_acme / (8 * t_mean), rel=1e-9)
    assert usage["beta"]["fair_share"] == 0.0 and usage["beta"]["cores_in_use"] == 8
    svc.loop.clock = lambda: 5.0  # beta has held 8 cores over [2, 5): 3 h against acme's 2 h, decayed since
    usage = {t["tenant"]: t for t in w.client.get("/api/v1/usage", headers=w.admin).json()["tenants"]}
    u_beta = 8 * t_mean * (1 - 2 ** (-3 / 10))
    assert usage["beta"]["core_h_decayed"] == pytest.approx(u_beta, rel=1e-9)
    assert usage["acme"]["core_h_decayed"] == pytest.approx(u_acme * 2 ** (-3 / 10), rel=1e-9)
    svc.close()


def test_quota_and_usage_answers_by_role(db_url, tmp_path):
    svc = make_service(db_url, tmp_path)
    w = build_world(svc)
    assert w.client.get("/api/v1/quotas", headers=w.acme).json()["document"] is None
    r = w.client.put("/api/v1/quotas", json=DOC, headers=w.admin)
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["document"] == DOC
    mine = w.client.get("/api/v1/quotas", headers=w.beta).json()
    assert mine["document"]["quotas"] == [DOC["quotas"][1]] and mine["document"]["tenants"] == {"beta": 1}
    assert "updated_by" not in mine
    assert "acme" not in str(mine)  # nothing of the other tenant
    submit(w, w.acme, 2)
    svc.loop.place()
    staff = w.client.get("/api/v1/usage", headers=w.operator).json()
    assert {t["tenant"] for t in staff["tenants"]} == {"acme", "beta"}
    own = w.client.get("/api/v1/usage", headers=w.beta).json()
    assert [t["tenant"] for t in own["tenants"]] == ["beta"] and own["tenants"][0]["cores_in_use"] == 0
    assert "acme" not in str(own)
    with svc.sessions() as s:
        events = s.scalars(sa.select(AuditEvent).where(AuditEvent.action == "quotas_set")).all()
    assert [e.detail["version"] for e in events] == [1] and events[0].actor.startswith("admin:")
    svc.close()


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"quotas": [{"id": "Q1", "tenant": "acme", "cores": "lots"}]}, "quotas.0.cores"),
        ({"quotas": [{"id": "Q1", "tenant": "acme", "cores": 1, "within": "atlantis"}]}, "quotas.0.within"),
        ({"quotas": [{"id": "Q1", "tenant": "acme"}]}, "quotas.0.cores"),
        (
            {"quotas": [{"id": "Q1", "tenant": "acme", "cores": 1}, {"id": "Q1", "tenant": "b", "cores": 2}]},
            "quotas.1.id",
        ),
        ({"tenants": {"acme": 0}}, "tenants.acme"),
        ({"half_life_h": 1e308 * 10}, "half_life_h"),
        ({"quotas": [{"id": "Q1", "tenant": "acme", "cores": 2**60}]}, "quotas.0.cores"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_document_is_a_422_naming_the_field_and_changes_nothing(world, doc, field):
    import json

    body = json.dumps(doc)  # Infinity as Python writes it: JSON parsers here read it as a float
    r = world.client.put("/api/v1/quotas", content=body, headers={**world.admin, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", field], r.text
    assert world.client.get("/api/v1/quotas", headers=world.admin).json()["document"] is None


def test_serve_refuses_a_bad_tenancy_file_in_one_line(tmp_path):
    bad = tmp_path / "q.yaml"
    bad.write_text("quotas:\n  - id: Q1\n    tenant: acme\n    cores: lots\n", encoding="utf-8")
    out = subprocess.run(
        [SUANWANG, "serve", "--quotas", str(bad), "--db", f"sqlite:///{tmp_path / 'x.db'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "q.yaml, row 1, field 'cores'" in lines[0], out.stderr
    assert not (tmp_path / "x.db").exists()  # refused before anything started


def test_migration_0006_goes_up_and_down(db_url):
    import importlib.resources

    from alembic import command
    from alembic.config import Config

    from suanwang.service.db import make_engine

    def alembic(conn, target: str, down: bool = False) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(importlib.resources.files("suanwang.service") / "migrations"))
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)
        conn.commit()

    engine = make_engine(db_url)
    with engine.connect() as conn:
        alembic(conn, "0006")
        assert {"tenancy", "holds", "tenant_usage"} <= set(sa.inspect(conn).get_table_names())
        alembic(conn, "0005", down=True)
        assert not {"tenancy", "holds", "tenant_usage"} & set(sa.inspect(conn).get_table_names())
        alembic(conn, "head")
    engine.dispose()


def test_two_replicas_keep_the_quotas_and_the_ledger_exact(pg_url, tmp_path):
    """Two loops on one PostgreSQL database place a burst of two tenants' jobs at once: every job once, no quota
    passed (the quota usage is read after the capacity lock), one hold per placed job."""
    import threading
    from collections import Counter

    from suanwang.service.tenancy import Hold

    with sa.create_engine(pg_url).begin() as c:
        c.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    a = make_service(pg_url, tmp_path / "a", batch_size=8, replica="a")
    b = make_service(pg_url, tmp_path / "b", batch_size=8, replica="b")
    w = build_world(a)
    doc = {"quotas": [{"id": "A1", "tenant": "acme", "cores": 40}, {"id": "B1", "tenant": "beta", "cores": 24}]}
    assert w.client.put("/api/v1/quotas", json=doc, headers=w.admin).status_code == 200
    for headers in (w.acme, w.beta):
        body = {"jobs": [dict(BODY, cpu_cores=4) for _ in range(30)]}
        assert w.client.post("/api/v1/jobs/batch", json=body, headers=headers).status_code == 201
    errors, start = [], threading.Barrier(2)

    def run(svc):
        try:
            start.wait(timeout=60)  # both loops start together (which one places what is up to timing)
            for _ in range(20):
                svc.loop.place()
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    with a.sessions() as s:
        placed = Counter(s.scalars(sa.select(AuditEvent.object).where(AuditEvent.action == "place")))
        held = dict(
            s.execute(
                sa.select(JobRow.tenant_id, sa.func.sum(JobRow.cpu_cores))
                .where(JobRow.state == "placed")
                .group_by(JobRow.tenant_id)
            ).all()
        )
        holds = s.scalar(sa.select(sa.func.count()).select_from(Hold))
        actors = set(s.scalars(sa.select(AuditEvent.actor).where(AuditEvent.action == "place")))
    assert set(placed.values()) == {1} and len(placed) == 10 + 6  # 40 / 4 of acme's, 24 / 4 of beta's
    assert sorted(held.values()) == [24, 40] and holds == 16
    assert actors <= {"system:scheduler@a", "system:scheduler@b"}
    a.close()
    b.close()


def test_jobs_their_quota_bars_do_not_hold_the_batch(db_url, tmp_path):
    """A tenant whose quota is full while it has more queued jobs than a batch: the claim passes those over (as
    the simulator passes over a queue its quota bars), so the other tenant's jobs are placed."""
    svc = make_service(db_url, tmp_path, batch_size=4)
    w = build_world(svc)
    one_site(svc)
    doc = {"quotas": [{"id": "B1", "tenant": "beta", "cores": 8}]}
    assert w.client.put("/api/v1/quotas", json=doc, headers=w.admin).status_code == 200
    capped = submit(w, w.beta, 10)  # first, so first in every order but fair share's
    free = submit(w, w.acme, 4)
    svc.loop.clock = lambda: 50.0
    for _ in range(3):
        svc.loop.place()
    got = states(svc)
    assert [got[j] for j in free] == ["placed"] * 4
    assert sorted(got[j] for j in capped) == ["placed"] + ["queued"] * 9  # 8 cores each, at most 8
    svc.close()


def test_a_barred_job_still_gets_its_reason_when_the_batch_has_room(world):
    one_site(world.svc)
    doc = {"quotas": [{"id": "A1", "tenant": "acme", "cores": 8}]}
    assert world.client.put("/api/v1/quotas", json=doc, headers=world.admin).status_code == 200
    _, second = submit(world, world.acme, 2)
    world.svc.loop.place()
    world.svc.loop.place()
    job = world.client.get(f"/api/v1/jobs/{second}", headers=world.acme).json()
    assert job["state"] == "queued" and "no free capacity now" in job["reason"]
    verdicts = world.client.get(f"/api/v1/jobs/{second}/placement", headers=world.acme).json()["verdicts"]
    assert verdicts[0]["reason"].startswith("quota A1: tenant acme at most 8 cores nationally")


def test_spill_over_tiers_hold_in_the_service_and_in_quotes(db_url, tmp_path):
    """A tenant whose only place is Shanghai: its Beijing job goes to shanghai-dc though beijing-dc is free and
    nearer, waits when Shanghai is full, and a quote lists no Beijing site; a tenant without places is unchanged."""
    from suanwang.service.db import SiteRow

    svc = make_service(db_url, tmp_path)
    w = build_world(svc)
    with svc.sessions() as s, s.begin():
        s.execute(sa.delete(SiteRow).where(SiteRow.id.not_in([ONE_SITE, "shanghai-dc"])))
        s.execute(sa.update(SiteRow).values(cpu_cores=8, gpu_cards=0))
    doc = {"name": "spill", "tenants": {"acme": 1, "beta": 1}, "spill_over": {"acme": ["shanghai"]}}
    assert w.client.put("/api/v1/quotas", json=doc, headers=w.operator).status_code == 200
    quote = w.client.post("/api/v1/quotes", json=BODY, headers=w.acme).json()
    assert [o["site_id"] for o in quote["feasible"]] == ["shanghai-dc"], quote
    first, second = submit(w, w.acme, 2)
    (other,) = submit(w, w.beta, 1)
    svc.loop.clock = lambda: 100.0
    svc.loop.place()
    with svc.sessions() as s:
        where = dict(s.execute(sa.select(JobRow.id, JobRow.site_id)).all())
    got = states(svc)
    assert where[first] == "shanghai-dc" and got[second] == "queued" and where[second] is None
    assert where[other] == ONE_SITE  # beta has no places: the policy's own choice, Beijing's DC
    svc.close()
