"""The site registry: seeding from the atlas, registration, updates, heartbeats and free capacity."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from suanwang.atlas import Atlas, Province
from suanwang.atlas.places import normalise
from suanwang.service import audit
from suanwang.service.db import JobRow, SiteRow, iso, utcnow
from suanwang.service.errors import Conflict, Invalid, NotFound
from suanwang.service.schemas import SiteIn, SitePatch

HOLDING = ("placed", "running")  # job states that hold a site's capacity
EMBEDDED = ("local",)  # engines the service runs itself; every other engine is driven by a site agent


def province_of(atlas: Atlas, name: str, field: str) -> Province:
    """The province with this id, Chinese or English name; Invalid names the field otherwise."""
    key = normalise(name)
    for p in atlas.provinces.values():
        if key in (normalise(p.id), normalise(p.name_zh), normalise(p.name_en)):
            return p
    raise Invalid(f"{field}: unknown province '{name}' - give an id such as 'henan' or a name such as 河南", field)


def carbon_kg_per_kwh(atlas: Atlas, province_id: str, green_share: float) -> float:
    """Effective grid carbon in kgCO2/kWh at a site: the province's grid factor (atlas carbon year) times
    (1 - green share)."""
    return atlas.co2(province_id) * (1.0 - green_share)


def seed(session: Session, atlas: Atlas) -> int:
    """Insert every atlas site missing from the table (first start); returns how many were added.

    Seeded sites are not heartbeat-monitored: the atlas describes them as running. A first heartbeat (or a PATCH
    with monitored=true) turns monitoring on.
    """
    known = set(session.scalars(sa.select(SiteRow.id)))
    added = 0
    for s in atlas.sites:
        if s.id in known:
            continue
        session.add(
            SiteRow(
                id=s.id,
                name_zh=s.name_zh,
                name_en=s.name_en,
                kind=s.kind,
                province_id=s.province_id,
                lat=s.lat,
                lon=s.lon,
                pue=s.pue,
                green_share=s.green_share,
                cpu_cores=s.cpu_cores,
                gpu_cards=s.gpu_cards,
                price_cny_per_kwh=s.price_cny_per_kwh,
                carbon_kg_per_kwh=carbon_kg_per_kwh(atlas, s.province_id, s.green_share),
                role=s.role,
                hub_id=s.hub_id,
                labels=list(s.labels),
                executor="local",
                status="up",
                monitored=False,
            )
        )
        added += 1
    return added


def held(
    session: Session, states: tuple[str, ...] = HOLDING, tenant_id: int | None = None
) -> dict[str, tuple[int, int]]:
    """(cores, cards) held per site by jobs in `states` (placed and running by default), of one tenant only with
    `tenant_id`."""
    where = [JobRow.state.in_(states)] + ([JobRow.tenant_id == tenant_id] if tenant_id is not None else [])
    rows = session.execute(
        sa.select(JobRow.site_id, sa.func.sum(JobRow.cpu_cores), sa.func.sum(JobRow.gpu_cards))
        .where(*where)
        .group_by(JobRow.site_id)
    )
    return {sid: (int(c or 0), int(g or 0)) for sid, c, g in rows if sid}


def room(row: SiteRow, used: tuple[int, int], waiting: tuple[int, int] = (0, 0)) -> tuple[int, int, int, int]:
    """(cores total, cores free, cards total, cards free) of a site for the scheduler.

    A site whose agent reports the engine's capacity uses the engine's numbers: total as read, free as read less
    `waiting` (placed jobs the engine has not started yet, so does not count), and never more than total less
    `used` (placed and running jobs), since a report is up to one heartbeat old. Other sites: the declared
    capacity less `used`.
    """
    if row.engine_cpu_total is None:
        cpu, gpu = int(row.cpu_cores), int(row.gpu_cards)
        return cpu, max(0, cpu - used[0]), gpu, max(0, gpu - used[1])
    cpu, gpu = int(row.engine_cpu_total), int(row.engine_gpu_total or 0)
    cpu_free = min(int(row.engine_cpu_free or 0) - waiting[0], cpu - used[0])
    gpu_free = min(int(row.engine_gpu_free or 0) - waiting[1], gpu - used[1])
    return cpu, max(0, cpu_free), gpu, max(0, gpu_free)


def all_sites(session: Session) -> list[SiteRow]:
    """Every site row, in id order (the order the scheduler's arrays follow)."""
    return list(session.scalars(sa.select(SiteRow).order_by(SiteRow.id)))


def site_json(
    row: SiteRow, used: tuple[int, int] = (0, 0), waiting: tuple[int, int] = (0, 0), staff: bool = True
) -> dict:
    """The API's view of a site, with free capacity after `used` (cores, cards; see `room`). Engine connection
    settings only for staff."""
    cpu, cpu_free, gpu, gpu_free = room(row, used, waiting)
    out = {
        "id": row.id,
        "name_zh": row.name_zh,
        "name_en": row.name_en,
        "kind": row.kind,
        "province_id": row.province_id,
        "lat": row.lat,
        "lon": row.lon,
        "pue": row.pue,
        "green_share": row.green_share,
        "cpu_cores": int(row.cpu_cores),
        "gpu_cards": int(row.gpu_cards),
        "cpu_free": cpu_free,
        "gpu_free": gpu_free,
        "price_cny_per_kwh": row.price_cny_per_kwh,
        "carbon_kg_per_kwh": row.carbon_kg_per_kwh,
        "status": row.status,
        "last_heartbeat": iso(row.last_heartbeat),
        "monitored": row.monitored,
        "labels": list(row.labels or []),
        "role": row.role,
        "hub_id": row.hub_id,
        "executor": row.executor,
        "engine": row.executor,
        "allow_commands": bool(row.allow_commands),
        "engine_capacity": None
        if row.engine_cpu_total is None
        else {
            "cpu_total": cpu,
            "cpu_free": int(row.engine_cpu_free or 0),
            "gpu_total": gpu,
            "gpu_free": int(row.engine_gpu_free or 0),
        },
        "engine_message": row.engine_message or "",
    }
    if staff:
        out["engine_settings"] = dict(row.engine_settings or {})
    return out


def get(session: Session, site_id: str, lock: bool = False) -> SiteRow:
    """The site row `site_id`, or NotFound."""
    stmt = sa.select(SiteRow).where(SiteRow.id == site_id)
    row = session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise NotFound(f"no site '{site_id}' - list them with GET /api/v1/sites", "site_id")
    return row


def register(session: Session, atlas: Atlas, body: SiteIn, actor: str) -> SiteRow:
    """Add a site; Conflict when the id is taken. Price defaults to the province's."""
    if session.get(SiteRow, body.id) is not None:
        raise Conflict(f"id: site '{body.id}' already exists - PATCH it instead", "id")
    p = province_of(atlas, body.province_id, "province_id")
    row = SiteRow(
        id=body.id,
        name_zh=body.name_zh,
        name_en=body.name_en,
        kind=body.kind,
        province_id=p.id,
        lat=body.lat,
        lon=body.lon,
        pue=body.pue,
        green_share=body.green_share,
        cpu_cores=body.cpu_cores,
        gpu_cards=body.gpu_cards,
        price_cny_per_kwh=p.price_cny_per_kwh if body.price_cny_per_kwh is None else body.price_cny_per_kwh,
        carbon_kg_per_kwh=carbon_kg_per_kwh(atlas, p.id, body.green_share),
        role="west" if p.region == "west" else "east",
        hub_id="",
        labels=list(body.labels),
        executor=body.engine,
        engine_settings=dict(body.engine_settings),
        allow_commands=body.allow_commands,
        status="up",
        monitored=body.monitored,
        last_heartbeat=utcnow() if body.monitored else None,
    )
    session.add(row)
    audit.record(
        session, actor, "site_register", f"site:{row.id}", province=p.id, cpu_cores=body.cpu_cores, engine=body.engine
    )
    return row


def update(session: Session, atlas: Atlas, site_id: str, body: SitePatch, actor: str) -> SiteRow:
    """Change capacity, price, green share, PUE, labels, status or monitoring of a site."""
    row = get(session, site_id, lock=True)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    for key, value in changes.items():
        setattr(row, "executor" if key == "engine" else key, value)
    if changes.get("engine") in EMBEDDED:  # capacity read from an engine no longer bound to the site
        row.engine_cpu_total = row.engine_cpu_free = row.engine_gpu_total = row.engine_gpu_free = None
    if "green_share" in changes:
        row.carbon_kg_per_kwh = carbon_kg_per_kwh(atlas, row.province_id, row.green_share)
    if changes.get("monitored"):
        row.last_heartbeat = row.last_heartbeat or utcnow()
    row.updated_at = utcnow()
    changes.pop("engine_settings", None)  # may hold credentials: the audit log says only that they changed
    if body.engine_settings is not None:
        changes["engine_settings"] = "changed"
    audit.record(session, actor, "site_update", f"site:{row.id}", **changes)
    return row


def heartbeat(session: Session, site_id: str, actor: str) -> SiteRow:
    """Record a heartbeat: the site is alive and from now on monitored; a down site comes back up."""
    row = get(session, site_id, lock=True)
    row.last_heartbeat = utcnow()
    row.monitored = True
    if row.status != "up":
        row.status = "up"
        row.updated_at = row.last_heartbeat
        audit.record(session, actor, "site_up", f"site:{row.id}")
    return row
