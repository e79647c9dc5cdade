"""The service's tenancy: the tenancy document it enforces (quotas and fair-share weights, docs/tenancy.md), the
quota usage of each scheduling pass and the fair-share order of queued jobs - all rebuilt from the database.

- The document lives in the `tenancy` table (one row, a version counter): `suanwang serve --quotas FILE` stores
  it at start, `PUT /api/v1/quotas` replaces it; every replica's loop re-parses it when the version changes.
- Quota usage is never stored: each pass counts the cores and cards of the placed and running jobs per tenant and
  site (`holdings`) into a fresh `QuotaBook` (scheduler/quotas.py), so a restart rebuilds it exactly.
- Fair share (scheduler/fairshare.py) needs past usage: the `holds` ledger records when each job took its cores
  and cards (scheduler hours); when the job no longer holds them (done, failed, cancelled, re-queued), the next
  pass folds its decayed core- and card-hours into `tenant_usage` (per tenant, as of an hour) and drops the hold.
  U_t(now) = core_h · 2^(-(now - at_h)/H) + Σ_holds cores · T · (1 - 2^(-(now - hold_h)/H)), T = H / ln 2 -
  the integral FairShare keeps, rebuilt from rows. The end of a hold is taken at the first pass after the job
  ended (one loop interval late at most).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from suanwang.atlas import Atlas
from suanwang.errors import PolicyError
from suanwang.policy.quotas import Tenancy, parse_tenancy
from suanwang.scheduler.fairshare import FairShare
from suanwang.scheduler.quotas import QuotaBook, west_hubs
from suanwang.service import audit
from suanwang.service.db import Base, JobRow, Tenant, utcnow
from suanwang.service.errors import Invalid
from suanwang.service.sites import HOLDING

log = logging.getLogger("suanwang.service")
MAX_COUNT = 2**53  # cores / cards caps beyond this cannot be stored exactly in every database's JSON


class TenancyRow(Base):
    """The tenancy document the service enforces (one row, id 1), as JSON, with a version counter."""

    __tablename__ = "tenancy"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int]
    document: Mapped[dict] = mapped_column(sa.JSON)
    updated_at: Mapped[object] = mapped_column(sa.DateTime)
    updated_by: Mapped[str] = mapped_column(sa.String(120))


class Hold(Base):
    """A job holding cores and cards since `hold_h` (scheduler hours); dropped once folded into tenant_usage."""

    __tablename__ = "holds"
    job_seq: Mapped[int] = mapped_column(sa.ForeignKey("jobs.seq", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"))
    cpu_cores: Mapped[int] = mapped_column(sa.BigInteger)
    gpu_cards: Mapped[int] = mapped_column(sa.BigInteger)
    hold_h: Mapped[float]


class TenantUsage(Base):
    """A tenant's decayed core-hours and card-hours of ended holdings, as of `at_h` (scheduler hours)."""

    __tablename__ = "tenant_usage"
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    core_h: Mapped[float]
    card_h: Mapped[float]
    at_h: Mapped[float]


@dataclass(frozen=True)
class Held:
    """Cores and cards a tenant's jobs hold at a site (what QuotaBook.add reads of a job)."""

    tenant: str
    site_id: str
    cpu_cores: int
    gpu_cards: int


# --- the document -------------------------------------------------------------------------------------------


def _check_values(value, path: str) -> None:
    """Invalid (422 naming the path) for a number JSON or the database cannot hold, or a NUL in a string."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_values(str(k), path)
            _check_values(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_values(v, f"{path}.{i}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise Invalid(f"{path}: {value!r} is not a finite number - give a number such as 4000", path or "body")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_COUNT:
        raise Invalid(f"{path}: {value} is too large - give at most {MAX_COUNT}", path or "body")
    elif isinstance(value, str) and "\x00" in value:
        raise Invalid(f"{path}: contains a NUL character - remove it", path or "body")


def parse(raw, atlas: Atlas, file: str = "quotas") -> Tenancy:
    """The Tenancy of a document (parsed YAML or JSON); PolicyError names the file, rule number and field."""
    return parse_tenancy(raw, atlas, file)


def validate(raw, atlas: Atlas) -> Tenancy:
    """The Tenancy of a document sent to the API; Invalid (422) naming the field: `quotas.N.field` for rule N
    (from 0), with the loader's message (rule rows from 1, as in a file)."""
    _check_values(raw, "")
    try:
        return parse(raw, atlas, "body")
    except PolicyError as e:
        field = e.field or "body"
        if e.row is not None:
            field = f"quotas.{e.row - 1}.{e.field}" if e.field else f"quotas.{e.row - 1}"
        raise Invalid(str(e), field) from None


def store(session: Session, raw: dict, actor: str) -> int:
    """Replace the stored document by `raw` (already validated) in the caller's transaction, audited
    `quotas_set`; returns the new version."""
    row = session.get(TenancyRow, 1, with_for_update=True)
    now = utcnow()
    if row is None:
        row = TenancyRow(id=1, version=1, document=raw, updated_at=now, updated_by=actor)
        session.add(row)
    else:
        row.version, row.document, row.updated_at, row.updated_by = row.version + 1, raw, now, actor
    rules = raw.get("quotas") or []
    audit.record(session, actor, "quotas_set", "tenancy", version=row.version, name=raw.get("name"), rules=len(rules))
    session.flush()
    return row.version


def stored(session: Session) -> TenancyRow | None:
    """The stored document's row, or None when the service enforces no tenancy."""
    return session.get(TenancyRow, 1)


class TenancyCache:
    """The parsed stored document of one replica, re-parsed only when its version changes (thread-safe: the loop
    thread and the API's threads share it)."""

    def __init__(self, atlas: Atlas):
        self.atlas = atlas
        self._lock = threading.Lock()
        self._parsed: tuple[int | None, Tenancy | None] = (None, None)  # (version, tenancy), replaced together

    def current(self, session: Session) -> Tenancy | None:
        """The tenancy in force now (None: none stored)."""
        version = session.scalar(sa.select(TenancyRow.version).where(TenancyRow.id == 1))
        if version is None:
            return None
        seen, tenancy = self._parsed
        if version == seen:
            return tenancy
        raw = session.scalar(sa.select(TenancyRow.document).where(TenancyRow.id == 1))
        try:
            tenancy = parse(raw, self.atlas)
        except PolicyError as e:  # stored against other atlas data: enforce nothing rather than stop the loop
            log.warning("stored tenancy version %s is not valid here, not enforced: %s", version, e)
            tenancy = None
        with self._lock:
            self._parsed = (version, tenancy)
        return tenancy


# --- usage ----------------------------------------------------------------------------------------------------


def holdings(session: Session) -> list[Held]:
    """Cores and cards held per (tenant, site) by placed and running jobs - the quota usage, from the jobs."""
    j = JobRow.__table__
    rows = session.execute(
        sa.select(Tenant.name, j.c.site_id, sa.func.sum(j.c.cpu_cores), sa.func.sum(j.c.gpu_cards))
        .join(Tenant, Tenant.id == j.c.tenant_id)
        .where(j.c.state.in_(HOLDING), j.c.site_id.is_not(None))
        .group_by(Tenant.name, j.c.site_id)
    )
    return [Held(t, sid, int(c or 0), int(g or 0)) for t, sid, c, g in rows]


def quota_book(tenancy: Tenancy, sites: Sequence, held: Sequence[Held], hubs: dict) -> QuotaBook:
    """The QuotaBook of `tenancy` over the scheduler's `sites`, counting `held` (see `holdings`); `hubs`: the
    atlas's hubs (which are western)."""
    book = QuotaBook(tenancy, sites, west_hubs(hubs))
    index = {s.id: i for i, s in enumerate(sites)}
    for h in held:
        if h.site_id in index:
            book.add(index[h.site_id], h, 1)
    return book


def barred(book: QuotaBook, tenant: str, cores: int, cards: int) -> bool:
    """Whether a job of `tenant` with `cores` and `cards` would pass one of its quotas at every site now (the
    claim passes it over, as the simulator passes over a queue whose tenant's quota bars the site)."""
    room = book.room(Held(tenant, "", int(cores), int(cards)))
    return room is not None and not room.any()


def network_totals(session: Session) -> tuple[int, int]:
    """(cores, cards) of every site, as the scheduler counts them (`sites.room`: the engine's reading where an
    agent reports one, else the declared capacity) - fair share's C and G."""
    from suanwang.service.db import SiteRow

    agent = SiteRow.engine_cpu_total.is_not(None)
    cores = sa.func.sum(sa.case((agent, SiteRow.engine_cpu_total), else_=SiteRow.cpu_cores))
    cards = sa.func.sum(sa.case((agent, sa.func.coalesce(SiteRow.engine_gpu_total, 0)), else_=SiteRow.gpu_cards))
    c, g = session.execute(sa.select(cores, cards)).one()
    return int(c or 0), int(g or 0)


def _names(session: Session) -> dict[int, str]:
    return dict(session.execute(sa.select(Tenant.id, Tenant.name)).all())


def _holding(jobs: sa.Table):
    """EXISTS: the hold's job is placed or running (a primary-key lookup per hold)."""
    return sa.exists().where(jobs.c.seq == Hold.job_seq, jobs.c.state.in_(HOLDING))


def fair_share(session: Session, tenancy: Tenancy, total_cores: int, total_cards: int, now_h: float) -> FairShare:
    """The FairShare of every tenant at `now_h` (to be read at that hour), rebuilt from `tenant_usage` and `holds`
    (module docstring); only reads. A hold whose job has ended but is not folded yet counts until `now_h` - what
    `settle` folds it as."""
    fair = FairShare(tenancy, total_cores, total_cards)
    h, t_ = fair.half_life_h, fair.mean_life_h
    usage = {u.tenant_id: (u.core_h, u.card_h, u.at_h) for u in session.scalars(sa.select(TenantUsage))}
    groups = session.execute(  # one row per tenant and start hour (the jobs placed in one pass share it)
        sa.select(Hold.tenant_id, Hold.hold_h, sa.func.sum(Hold.cpu_cores), sa.func.sum(Hold.gpu_cards)).group_by(
            Hold.tenant_id, Hold.hold_h
        )
    ).all()
    # The FairShare is read at `now_h` only, so the cores and cards held now (what it would accumulate from here)
    # are left at 0: U and V at `now_h` are all its shares need.
    live: dict[int, list[float]] = {}  # tenant id -> [U, V] of the holds, as of now
    for tid, since, cores, cards in groups:
        gain = t_ * (1.0 - 2.0 ** (-max(0.0, now_h - since) / h))
        acc = live.setdefault(tid, [0.0, 0.0])
        acc[0] += int(cores) * gain
        acc[1] += int(cards) * gain
    names = _names(session)
    for tid in set(usage) | set(live):
        name = names.get(tid)
        if name is None:
            continue
        u, v, at = usage.get(tid, (0.0, 0.0, now_h))
        keep = 2.0 ** (-max(0.0, now_h - at) / h)
        cur = live.get(tid, (0.0, 0.0))
        fair.acc[name] = [u * keep + cur[0], v * keep + cur[1], 0.0, 0.0, now_h]
    return fair


def settle(session: Session, tenancy: Tenancy, now_h: float) -> None:
    """The ledger's writes of a placement pass (its transaction, under the capacity lock): holds of jobs that no
    longer hold capacity are folded into tenant_usage as ended at `now_h` and dropped; placed or running jobs
    without a hold (placed while no tenancy was set) get one from `now_h`."""
    h = float(tenancy.half_life_h)
    t_ = h / math.log(2)
    j = JobRow.__table__
    gone = session.execute(  # driven by the holds (few), never by the jobs (every job ever submitted)
        sa.select(Hold.job_seq, Hold.tenant_id, Hold.cpu_cores, Hold.gpu_cards, Hold.hold_h).where(~_holding(j))
    ).all()
    if gone:
        usage = {u.tenant_id: [u.core_h, u.card_h, u.at_h] for u in session.scalars(sa.select(TenantUsage))}
        touched = set()
        for _, tid, cores, cards, since in gone:
            gain = t_ * (1.0 - 2.0 ** (-max(0.0, now_h - since) / h))
            acc = usage.setdefault(tid, [0.0, 0.0, now_h])
            keep = 2.0 ** (-max(0.0, now_h - acc[2]) / h)
            acc[0], acc[1], acc[2] = acc[0] * keep + cores * gain, acc[1] * keep + cards * gain, now_h
            touched.add(tid)
        conn = session.connection()
        conn.execute(sa.delete(Hold.__table__).where(Hold.__table__.c.job_seq.in_([g[0] for g in gone])))
        conn.execute(sa.delete(TenantUsage.__table__).where(TenantUsage.__table__.c.tenant_id.in_(list(touched))))
        rows = [{"tenant_id": k, "core_h": usage[k][0], "card_h": usage[k][1], "at_h": usage[k][2]} for k in touched]
        conn.execute(sa.insert(TenantUsage.__table__), rows)
    new = session.execute(
        sa.select(j.c.seq, j.c.tenant_id, j.c.cpu_cores, j.c.gpu_cards).where(
            j.c.state.in_(HOLDING), ~sa.exists().where(Hold.job_seq == j.c.seq)
        )
    ).all()
    record_holds(session, [(r.seq, r.tenant_id, int(r.cpu_cores), int(r.gpu_cards)) for r in new], now_h)


def record_holds(session: Session, placed: Sequence[tuple[int, int, int, int]], now_h: float) -> None:
    """Holds from `now_h` for jobs that just took capacity: (job seq, tenant id, cores, cards) each."""
    if placed:
        session.connection().execute(
            sa.insert(Hold.__table__),
            [{"job_seq": q, "tenant_id": t, "cpu_cores": c, "gpu_cards": g, "hold_h": now_h} for q, t, c, g in placed],
        )


def order_key(fair: FairShare, tenant: str, priority: int, submit_h: float, seq: int, now_h: float) -> tuple:
    """FairShare.key of a queued job row: (its tenant's share, -priority, submit hour, arrival order)."""
    return (fair.share(tenant, now_h), -priority, submit_h, seq)


def load_file(path, atlas: Atlas) -> dict:
    """A tenancy file read for the service, as the JSON document it stores; PolicyError / Invalid name the file,
    rule and field (the same checks as `PUT /api/v1/quotas`)."""
    import json
    from pathlib import Path

    import yaml

    from suanwang.policy.quotas import load_tenancy

    load_tenancy(path, atlas)  # every error of the loader, naming the file
    raw = json.loads(json.dumps(yaml.safe_load(Path(path).read_text(encoding="utf-8")), default=str))
    try:
        _check_values(raw, "")
    except Invalid as e:
        raise PolicyError(Path(path).name, None, e.field, str(e).split(": ", 1)[-1]) from None
    return raw


def _rule_json(b, cores_in_use: int, cards_in_use: int) -> dict:
    r = b.rule
    return {
        "id": r.id,
        "rule": r.text(),
        "cores": r.cores,
        "cards": r.cards,
        "cores_in_use": cores_in_use,
        "cards_in_use": cards_in_use,
    }


def usage_report(session: Session, atlas: Atlas, tenancy: Tenancy | None, now_h: float, only: str | None) -> dict:
    """GET /usage: per tenant (only `only` when given) the cores and cards its placed and running jobs hold, each
    quota rule's use against its cap, its decayed core- and card-hours and fair-share value (None without a
    tenancy) at `now_h`."""
    from suanwang.service.placement import to_site
    from suanwang.service.sites import all_sites

    rows = all_sites(session)
    site_list = [to_site(r) for r in rows]
    held = holdings(session)
    book = quota_book(tenancy or Tenancy(), site_list, held, atlas.hubs)
    in_use: dict[str, list[int]] = {}
    for h in held:
        acc = in_use.setdefault(h.tenant, [0, 0])
        acc[0] += h.cpu_cores
        acc[1] += h.gpu_cards
    fair = None
    if tenancy is not None:
        fair = fair_share(session, tenancy, *network_totals(session), now_h)
    names = set(_names(session).values()) | set(in_use)
    if tenancy is not None:
        names |= {r.tenant for r in tenancy.rules} | set(tenancy.weights or {})
    if only is not None:
        names = {only}
    out = []
    for name in sorted(names):
        cores, cards = in_use.get(name, (0, 0))
        u, v = fair.usage(name, now_h) if fair is not None else (0.0, 0.0)
        out.append(
            {
                "tenant": name,
                "weight": tenancy.weight(name) if tenancy is not None else None,
                "cores_in_use": cores,
                "cards_in_use": cards,
                "core_h_decayed": u if fair is not None else None,
                "card_h_decayed": v if fair is not None else None,
                "fair_share": fair.share(name, now_h) if fair is not None else None,
                "quotas": [_rule_json(b, b.cores, b.cards) for b in book.rules(name)],
            }
        )
    return {
        "at_h": now_h,
        "tenancy": tenancy.name if tenancy is not None else None,
        "half_life_h": tenancy.half_life_h if tenancy is not None else None,
        "tenants": out,
    }


def document_for(row: TenancyRow | None, tenant: str | None) -> dict:
    """GET /quotas: the stored document (staff, `tenant` None), or for a tenant only its own weight and rules."""
    if row is None:
        return {"version": 0, "updated_at": None, "document": None}
    from suanwang.service.db import iso

    doc = dict(row.document)
    if tenant is not None:
        weights = doc.get("tenants") or {}
        doc = {
            "name": doc.get("name"),
            "half_life_h": doc.get("half_life_h"),
            "tenants": {tenant: weights[tenant]} if tenant in weights else {},
            "quotas": [q for q in doc.get("quotas") or [] if isinstance(q, dict) and str(q.get("tenant")) == tenant],
        }
        return {"version": row.version, "updated_at": iso(row.updated_at), "document": doc}
    return {"version": row.version, "updated_at": iso(row.updated_at), "updated_by": row.updated_by, "document": doc}
