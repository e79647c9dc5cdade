"""Totals of predicted cost (CNY), energy (kWh) and carbon (kgCO2) of placed jobs, by tenant, site or day."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from suanwang.service.auth import Principal
from suanwang.service.db import JobRow, Tenant
from suanwang.service.jobs import visible

GROUPS = ("tenant", "site", "day")


def summary(session: Session, who: Principal, by: str) -> list[dict]:
    """One row per group: {by: key, "jobs", "cost_cny", "energy_kwh", "carbon_kg"} over jobs that were placed."""
    key = {"tenant": Tenant.name, "site": JobRow.site_id, "day": sa.func.date(JobRow.created_at)}[by]
    rows = session.execute(
        sa.select(
            key.label("key"),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(JobRow.cost_cny), 0.0),
            sa.func.coalesce(sa.func.sum(JobRow.energy_kwh), 0.0),
            sa.func.coalesce(sa.func.sum(JobRow.carbon_kg), 0.0),
        )
        .join(Tenant)
        .where(visible(who), JobRow.cost_cny.is_not(None))
        .group_by(key)
        .order_by(key)
    )
    return [
        {by: str(k), "jobs": int(n), "cost_cny": float(c), "energy_kwh": float(e), "carbon_kg": float(g)}
        for k, n, c, e, g in rows
    ]
