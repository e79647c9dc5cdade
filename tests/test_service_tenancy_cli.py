"""`suanwang quotas`, `usage` and `quote` through the console script against a real `suanwang serve --quotas FILE`
(SQLite, loopback): tables and --json, a tenant sees its own rules and usage only, refusals are one line, exit 2."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from test_cli_client import refused, run, serving

SUANWANG = str(Path(sys.executable).with_name("suanwang"))
ADMIN = "cli-tenancy-admin-token"
TENANCY = """\
name: cli-test
half_life_h: 12
tenants: {acme: 2}
quotas:
  - id: A1
    tenant: acme
    cores: 6
    description: acme at most 6 cores
  - id: B1
    tenant: beta
    cards: 1
    within: west
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(URL, acme token, beta token) of `suanwang serve --quotas` on a free port and a fresh SQLite file."""
    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "tenants.yaml").write_text(TENANCY, encoding="utf-8")
    with serving(tmp, "--quotas", str(tmp / "tenants.yaml"), admin=ADMIN) as url:
        tokens = []
        for name in ("acme", "beta"):
            assert run("tenant", "create", name, server=url, token=ADMIN).returncode == 0
            p = run("token", "create", "--role", "tenant", "--tenant", name, server=url, token=ADMIN)
            tokens.append(p.stdout.strip())
        yield url, tokens[0], tokens[1]


def test_quotas_as_staff_and_as_a_tenant(served):
    url, acme, beta = served
    p = run("quotas", server=url, token=ADMIN)
    assert p.returncode == 0, p.stderr
    assert "A1" in p.stdout and "B1" in p.stdout and "cli-test" in p.stdout
    doc = json.loads(run("quotas", "--json", server=url, token=acme).stdout)["document"]
    assert [q["id"] for q in doc["quotas"]] == ["A1"] and doc["tenants"] == {"acme": 2}
    p = run("quotas", server=url, token=beta)
    assert "B1" in p.stdout and "A1" not in p.stdout and "acme" not in p.stdout


def test_quotas_set_replaces_the_document_and_refuses_a_bad_one(served, tmp_path):
    url, acme, _ = served
    bad = tmp_path / "bad.yaml"
    bad.write_text("quotas:\n  - id: Q1\n    tenant: acme\n    cores: lots\n", encoding="utf-8")
    line = refused(run("quotas", "--set", str(bad), server=url, token=ADMIN))
    assert "HTTP 422" in line and "quotas.0.cores" in line and "whole number" in line
    assert "Permission" not in line
    assert "HTTP 403" in refused(run("quotas", "--set", str(bad), server=url, token=acme))
    assert "cannot reach" in refused(run("quotas", server="http://127.0.0.1:9", token=ADMIN))
    good = tmp_path / "good.yaml"
    good.write_text(TENANCY.replace("cores: 6", "cores: 8"), encoding="utf-8")
    out = json.loads(run("quotas", "--set", str(good), "--json", server=url, token=ADMIN).stdout)
    assert out["version"] == 2 and out["document"]["quotas"][0]["cores"] == 8
    good.write_text(TENANCY, encoding="utf-8")
    assert run("quotas", "--set", str(good), server=url, token=ADMIN).returncode == 0


def test_usage_and_quote(served):
    url, acme, beta = served
    for _ in range(2):
        p = run("submit", "--origin", "许昌", "--cpu", "4", "--runtime-h", "2", server=url, token=acme)
        assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 30
    while True:  # the loop places one (4 of A1's 6 cores); the other waits for the quota
        use = json.loads(run("usage", "--json", server=url, token=acme).stdout)
        if use["tenants"][0]["cores_in_use"] == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    [mine] = use["tenants"]
    assert mine["tenant"] == "acme" and mine["cores_in_use"] == 4 and mine["weight"] == 2
    assert mine["quotas"][0]["cores_in_use"] == 4 and mine["quotas"][0]["cores"] == 6
    time.sleep(1.0)  # a few more loop passes: still only one placed
    assert json.loads(run("usage", "--json", server=url, token=acme).stdout)["tenants"][0]["cores_in_use"] == 4
    p = run("usage", server=url, token=ADMIN)
    assert p.returncode == 0 and "acme" in p.stdout and "beta" in p.stdout and "quota use" in p.stdout
    assert "acme" not in run("usage", server=url, token=beta).stdout
    p = run("quote", "--origin", "许昌", "--cpu", "2", server=url, token=acme)
    assert p.returncode == 0, p.stderr
    assert "would place at" in p.stdout and "ruled out" not in p.stdout.split("would place at")[0]
    q = json.loads(run("quote", "--origin", "许昌", "--cpu", "4", "--json", server=url, token=acme).stdout)
    assert q["site_id"] is None and all(f["reason"].startswith("quota A1") for f in q["feasible"])
    assert "--cpu" in refused(run("quote", "--origin", "许昌", "--cpu", "-1", server=url, token=acme))
    assert "HTTP 422" in refused(run("quote", "--origin", "atlantis", server=url, token=acme))
