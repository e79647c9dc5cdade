"""The dashboard's tenants' share panel in a real browser (the fixtures of test_dashboard.py): staff see every
tenant's row, a tenant only its own, each with cores in use, network share, fair share and quota use."""

from __future__ import annotations

from test_dashboard import TENANT, Live, browser, live, page, sign_in  # noqa: F401 - fixtures

DOC = {"half_life_h": 12, "tenants": {TENANT: 2}, "quotas": [{"id": "D1", "tenant": TENANT, "cores": 6}]}
JOB = {"origin": "郑州", "cpu_cores": 3, "runtime_h": 1.0, "latency_class": "batch"}


def rows(pg) -> dict[str, list[str]]:
    """The panel's rows: tenant -> its cells' text."""
    return pg.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#tenants tbody tr')].map(
            (tr) => [tr.dataset.tenant, [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())]))"""
    )


def test_staff_see_every_tenants_share_and_a_tenant_only_its_own(live: Live, page):  # noqa: F811
    pg, log = page
    assert live.api.put("/api/v1/quotas", json=DOC).status_code == 200
    if live.api.post("/api/v1/tenants", json={"name": "rival"}).status_code == 201:
        live.api.post("/api/v1/jobs", json=dict(JOB, tenant="rival")).raise_for_status()
    for _ in range(2):
        live.api.post("/api/v1/jobs", json=dict(JOB, tenant=TENANT)).raise_for_status()
    sign_in(pg, live)
    pg.wait_for_function(
        "t => [...document.querySelectorAll('#tenants tbody tr')].find((tr) => tr.dataset.tenant === t)"
        "?.textContent.includes('6/6')",
        arg=TENANT,
    )
    got = rows(pg)
    assert {TENANT, "rival"} <= set(got)
    mine = got[TENANT]
    assert mine[1] == "2.00" and "D1 6/6" in mine[6]  # weight; the quota full (two jobs of 3 cores)
    assert mine[4].endswith("%") and mine[5] != "–"
    assert pg.text_content("#tenants-note").startswith("份额")
    pg.click("#signout")
    sign_in(pg, live, live.tenant_token)
    pg.wait_for_function("() => document.querySelectorAll('#tenants tbody tr').length > 0")
    assert list(rows(pg)) == [TENANT]
    assert "rival" not in pg.text_content("#tenants")
    log.assert_clean()
