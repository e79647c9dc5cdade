"""The web dashboard end to end: the real service on a loopback port, driven by Debian chromium through Playwright.

Needs `/usr/bin/chromium` and the Noto CJK fonts (`make browser`); Playwright's own browser download is not used.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from suanwang.service import Service, ServiceConfig, create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ADMIN_TOKEN = "dashboard-test-admin-token"
TENANT = "acme"
WAIT_MS = 15_000


@dataclass
class Live:
    """The running service: its base URL, an API client signed in as admin, a tenant's and an operator's token."""

    url: str
    api: httpx.Client
    tenant_token: str
    operator_token: str


@dataclass
class Console:
    """What the page reported: uncaught exceptions, console errors and warnings, failed HTTP responses."""

    page_errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)

    def assert_clean(self, allow_status: tuple[int, ...] = ()) -> None:
        """No JS exception, no console error or warning, and no failed request except the allowed statuses."""
        assert not self.page_errors, f"JavaScript errors: {self.page_errors}"
        unexpected_http = [e for e in self.http_errors if int(e.split()[0]) not in allow_status]
        assert not unexpected_http, f"failed requests: {unexpected_http}"
        # Chromium also logs each failed request as a console error; those are judged above, by status.
        console = [c for c in self.console if "Failed to load resource" not in c]
        assert not console, f"console errors / warnings: {console}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    """The real service (SQLite in a temp dir, scheduling loop on) served by uvicorn in a thread."""
    tmp = tmp_path_factory.mktemp("dashboard")
    cfg = ServiceConfig(
        db_url=f"sqlite:///{tmp / 'suanwang.db'}",
        admin_token=ADMIN_TOKEN,
        loop_interval_s=0.2,
        simulated_run_s=600.0,  # jobs stay running during the test, so their flows stay on the map
        heartbeat_timeout_s=3600.0,
        workdir=tmp / "jobs",
    )
    svc = Service(cfg)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10) as api:
        assert api.post("/api/v1/tenants", json={"name": TENANT}).status_code == 201
        tenant_token = api.post("/api/v1/tokens", json={"role": "tenant", "tenant": TENANT}).json()["token"]
        operator_token = api.post("/api/v1/tokens", json={"role": "operator"}).json()["token"]
        yield Live(url, api, tenant_token, operator_token)
    server.should_exit = True
    thread.join(timeout=10)
    svc.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian chromium, headless."""
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run `make browser`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(params=["reduce"])
def page(browser: Browser, request) -> Iterator[tuple[Page, Console]]:
    """A fresh tab (own sessionStorage), Chinese UI, with its console recorded.

    Reduced motion (no map animations) keeps the tests light on CPU; the main test runs with animations too.
    """
    ctx = browser.new_context(viewport={"width": 1600, "height": 1100}, locale="zh-CN", reduced_motion=request.param)
    ctx.add_init_script("if (!localStorage.getItem('suanwang.lang')) localStorage.setItem('suanwang.lang', 'zh');")
    pg = ctx.new_page()
    pg.set_default_timeout(WAIT_MS)
    log = Console()
    pg.on("pageerror", lambda e: log.page_errors.append(str(e)))
    pg.on("console", lambda m: log.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    pg.on("response", lambda r: log.http_errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    yield pg, log
    ctx.close()


def sign_in(pg: Page, live: Live, token: str = ADMIN_TOKEN) -> None:
    pg.goto(f"{live.url}/dashboard/")
    pg.fill("#token", token)
    pg.click("#signin-btn")


def submit_job(pg: Page, origin: str, latency_class: str = "batch", cpu_cores: int = 4) -> str:
    """Fill and send the form; returns the new job's id shown in the confirmation."""
    pg.fill("input[name=origin]", origin)
    pg.fill("input[name=cpu_cores]", str(cpu_cores))
    pg.select_option("select[name=latency_class]", latency_class)
    pg.click("#submit-btn")
    pg.wait_for_selector("#submit-msg.ok, #submit-msg.bad")
    assert pg.get_attribute("#submit-msg", "class") == "msg ok", pg.text_content("#submit-msg")
    job_id = pg.get_attribute("#submit-msg", "data-job-id")
    assert job_id
    return job_id


def map_series(pg: Page, series_id: str) -> list[dict]:
    """The data of one series of the live ECharts map (what is drawn now)."""
    data = pg.evaluate(
        """(id) => {
            const chart = echarts.getInstanceByDom(document.querySelector('#map'));
            const s = chart.getOption().series.find((x) => x.id === id);
            return JSON.stringify(s ? s.data : null);
        }""",
        series_id,
    )
    got = json.loads(data)
    assert got is not None, f"the map has no series '{series_id}'"
    return got


@pytest.mark.parametrize("page", ["no-preference"], indirect=True)
def test_sign_in_submit_and_see_the_job_placed_on_the_map(live: Live, page):
    pg, log = page
    sign_in(pg, live)
    pg.wait_for_selector("#app:not([hidden])")
    assert pg.text_content("#who").startswith("管理员")  # role admin, all tenants

    sites = live.api.get("/api/v1/sites").json()
    pg.wait_for_function("n => document.querySelector('#map').dataset.sites === String(n)", arg=len(sites))
    assert {d["name"] for d in map_series(pg, "sites")} == {s["id"] for s in sites if s["status"] == "up"}

    job_id = submit_job(pg, "许昌")
    row = f"#jobs tbody tr[data-id='{job_id}']"
    pg.wait_for_selector(f"{row}[data-state='running'], {row}[data-state='placed'], {row}[data-state='done']")
    job = live.api.get(f"/api/v1/jobs/{job_id}").json()
    assert job["site_id"], job
    site = next(s for s in sites if s["id"] == job["site_id"])
    assert pg.get_attribute(f"{row} td[data-site]", "data-site") == site["id"]
    assert site["name_zh"] in pg.text_content(row)

    # The new job is selected: its site is highlighted on the map ...
    pg.wait_for_function("id => document.querySelector('#map').dataset.selectedSite === id", arg=site["id"])
    highlighted = map_series(pg, "selected-site")
    assert [d["name"] for d in highlighted] == [site["id"]]
    assert highlighted[0]["value"][:2] == [site["lon"], site["lat"]]
    # ... and, when the API gives the origin's coordinates, its flow runs from the origin city to that site.
    if job.get("origin_lat") is not None and job["state"] in ("placed", "running"):
        pg.wait_for_function("() => Number(document.querySelector('#map').dataset.flows) >= 1")
        flows = {d["name"]: d["coords"] for d in map_series(pg, "flows")}
        assert flows[job_id] == [[job["origin_lon"], job["origin_lat"]], [site["lon"], site["lat"]]]
        assert map_series(pg, "selected-flow")[0]["coords"] == flows[job_id]

    # Hovering the site shows its price and carbon now, and the jobs it has taken.
    pg.evaluate(
        """(id) => {
            const chart = echarts.getInstanceByDom(document.querySelector('#map'));
            const series = chart.getOption().series;
            const i = series.findIndex((s) => s.id === 'sites');
            const j = series[i].data.findIndex((d) => d.name === id);
            chart.dispatchAction({type: 'showTip', seriesIndex: i, dataIndex: j});
        }""",
        site["id"],
    )
    tip = pg.locator("#map > div").filter(has_text=site["name_zh"])
    tip.wait_for()
    text = tip.text_content()
    assert f"{site['price_cny_per_kwh']:.3f} CNY/kWh" in text and f"{site['carbon_kg_per_kwh']:.3f} kgCO₂/kWh" in text
    assert "累计作业" in text  # the site's row of /metrics/summary

    # The placement explanation lists every site's verdict, the chosen one first.
    pg.wait_for_selector("#explain table.verdicts")
    verdict_sites = pg.eval_on_selector_all("#explain tr[data-site]", "rows => rows.map((r) => r.dataset.site)")
    assert sorted(verdict_sites) == sorted(s["id"] for s in sites)
    assert verdict_sites[0] == site["id"]
    assert pg.get_attribute("#explain tr.chosen", "data-site") == site["id"]

    # KPIs agree with the API.
    total = live.api.get("/api/v1/jobs").json()["total"]
    pg.wait_for_function("n => document.querySelector('#kpi-jobs').textContent === String(n)", arg=total)
    log.assert_clean()


def test_clicking_a_job_explains_its_placement(live: Live, page):
    pg, log = page
    body = {"cpu_cores": 2, "runtime_h": 1.0, "tenant": TENANT}
    first = live.api.post("/api/v1/jobs", json=dict(body, origin="上海", latency_class="batch")).json()["id"]
    second = live.api.post("/api/v1/jobs", json=dict(body, origin="北京", latency_class="realtime")).json()["id"]
    sign_in(pg, live)
    for jid in (first, second):
        pg.wait_for_selector(f"#jobs tbody tr[data-id='{jid}'] td[data-site]:not([data-site=''])")
    assert pg.text_content("#explain .empty") == pg.evaluate("I18N.zh['explain.empty']")  # nothing selected yet
    pg.click(f"#jobs tbody tr[data-id='{first}']")
    pg.wait_for_selector(f"#jobs tbody tr.selected[data-id='{first}']")
    site_id = live.api.get(f"/api/v1/jobs/{first}").json()["site_id"]
    pg.wait_for_function("id => document.querySelector('#explain tr.chosen')?.dataset.site === id", arg=site_id)
    assert first in pg.text_content("#explain-job")
    pg.wait_for_function("id => document.querySelector('#map').dataset.selectedSite === id", arg=site_id)
    log.assert_clean()


def test_language_toggle_switches_every_string(live: Live, page):
    pg, log = page
    sign_in(pg, live)
    pg.wait_for_selector("#app:not([hidden])")
    zh_keys, en_keys = pg.evaluate("[Object.keys(I18N.zh).sort(), Object.keys(I18N.en).sort()]")
    assert zh_keys == en_keys, "the zh and en dictionaries must have the same keys"
    for lang in ("en", "zh"):
        pg.click("#lang")
        pg.wait_for_function("l => document.documentElement.lang.startsWith(l)", arg=lang)
        mismatched = pg.evaluate(
            """(lang) => [...document.querySelectorAll('[data-i18n]')]
                .filter((el) => el.textContent !== I18N[lang][el.dataset.i18n])
                .map((el) => el.dataset.i18n)""",
            lang,
        )
        assert mismatched == [], f"strings not switched to {lang}: {mismatched}"
    pg.click("#lang")  # English: site names in English in the map tooltip data and the header
    assert pg.text_content("#who").startswith("Admin")
    assert pg.text_content(".brand-name") == pg.evaluate("I18N.en['app.title']")
    log.assert_clean()


def test_a_tenant_submits_for_itself_and_an_operator_only_watches(live: Live, page):
    pg, log = page
    sign_in(pg, live, live.tenant_token)
    pg.wait_for_selector("#app:not([hidden])")
    assert pg.text_content("#who") == f"租户 · {TENANT}"
    assert pg.is_hidden("#tenant-field")
    job_id = submit_job(pg, "郑州", "interactive", 1)
    assert live.api.get(f"/api/v1/jobs/{job_id}").json()["tenant"] == TENANT
    pg.click("#signout")
    sign_in(pg, live, live.operator_token)
    pg.wait_for_selector("#app:not([hidden])")
    assert pg.text_content("#who").startswith("运维")
    assert pg.is_visible("#operator-note") and pg.is_disabled("#submit-btn")
    pg.wait_for_selector(f"#jobs tbody tr[data-id='{job_id}']")  # staff see every tenant's jobs
    log.assert_clean()


def test_signing_in_before_the_map_geometry_arrives_works_and_keeps_the_token_out_of_the_url(live: Live, page):
    """A slow network (or a busy machine) delivers the China geometry late: the sign-in form is wired before it."""
    pg, log = page
    held = []  # the geometry request, held until after the click
    pg.route("**/china.json", lambda route: held.append(route))
    sign_in(pg, live)
    pg.wait_for_timeout(300)  # a native form submission would have navigated by now
    assert len(held) == 1, "the page asked for the geometry once and it has not arrived"
    assert "token=" not in pg.url, "the form was submitted natively: the token is in the URL"
    held[0].continue_()
    pg.wait_for_selector("#app:not([hidden])")
    assert "token=" not in pg.url
    pg.wait_for_function("n => document.querySelector('#map').dataset.sites > 0", arg=0)
    log.assert_clean()


def test_a_bad_token_is_refused_with_a_message(live: Live, page):
    pg, log = page
    sign_in(pg, live, token="not-a-token")
    pg.wait_for_function("() => document.querySelector('#signin-error').textContent.length > 0")
    assert pg.is_hidden("#app")
    assert pg.text_content("#signin-error") == pg.evaluate("I18N.zh['signin.bad']")
    log.assert_clean(allow_status=(401,))


def test_an_unknown_origin_names_the_field(live: Live, page):
    pg, log = page
    sign_in(pg, live)
    pg.wait_for_selector("#app:not([hidden])")
    pg.fill("input[name=origin]", "Atlantis")
    pg.click("#submit-btn")
    pg.wait_for_selector("#submit-msg.bad")
    text = pg.text_content("#submit-msg")
    assert "origin" in text and "Atlantis" in text
    log.assert_clean(allow_status=(422,))


def test_the_token_lives_in_session_storage_only(live: Live, page):
    pg, log = page
    sign_in(pg, live)
    pg.wait_for_selector("#app:not([hidden])")
    assert pg.evaluate("sessionStorage.getItem('suanwang.token')") == ADMIN_TOKEN
    assert ADMIN_TOKEN not in pg.evaluate("JSON.stringify(localStorage)")
    pg.reload()  # same tab: still signed in
    pg.wait_for_selector("#app:not([hidden])")
    pg.click("#signout")
    pg.wait_for_selector("#signin:not([hidden])")
    assert pg.evaluate("sessionStorage.getItem('suanwang.token')") is None
    log.assert_clean()
