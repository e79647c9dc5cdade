"""Hub roles, PUE caps and rack-derived server counts against the approvals and the model's own constants."""

from __future__ import annotations

import re

from suanwang.atlas import load_atlas
from suanwang.atlas.carbon import carbon_of_moving_west
from suanwang.atlas.loader import DATA, read_csv

# The 2021-2022 approvals: four demand-side hubs (PUE <= 1.25) and four western energy hubs (PUE <= 1.2).
DEMAND_HUBS = {"jingjinji", "yangtze-delta", "greater-bay", "chengyu"}
WEST_HUBS = {"inner-mongolia", "guizhou", "gansu", "ningxia"}


def test_hub_roles_follow_the_approvals():
    atlas = load_atlas()
    assert {h for h, hub in atlas.hubs.items() if hub.role == "east"} == DEMAND_HUBS
    assert {h for h, hub in atlas.hubs.items() if hub.role == "west"} == WEST_HUBS


def test_cluster_pue_caps_by_hub_group():
    for s in load_atlas().sites:
        if s.kind == "national-cluster":
            assert s.pue == (1.25 if s.hub_id in DEMAND_HUBS else 1.2), s.id
    rows = {r["id"]: r for r in read_csv(DATA / "clusters.csv")}
    assert "YRD" not in rows["zhangjiakou"]["pue_basis"] and "YRD" not in rows["shaoguan"]["pue_basis"]
    assert "1.25以内" in rows["shaoguan"]["pue_basis"]


def test_chengyu_sites_are_not_west_and_not_in_moving_west():
    atlas = load_atlas()
    for sid in ("tianfu", "chongqing", "sichuan-dc", "chongqing-dc"):
        assert atlas.site(sid).role == "east", sid
    sites = {r["site_id"] for r in carbon_of_moving_west(atlas, ["北京"])}
    assert sites == {"horinger", "guian", "qingyang", "zhongwei"}


def test_servers_per_rack_follows_rack_power_and_server_power():
    atlas = load_atlas()
    rack_w = 2500.0  # Chinese standard rack, 2.5 kW (Qingyang plan)
    server_w = atlas.value("watts_per_core") * atlas.value("cores_per_server")
    assert atlas.value("servers_per_rack") == round(rack_w / server_w)  # 2500 / 512 -> 5
    spr = atlas.value("servers_per_rack")
    for r in read_csv(DATA / "clusters.csv"):
        m = re.search(r"([\d,]+) (?:planned )?racks x (\d+) servers", r["servers_basis"])
        if r["published_unit"].startswith("racks") or m:
            assert m, r["id"]
            racks, per = int(m.group(1).replace(",", "")), int(m.group(2))
            share = atlas.value("operating_share_of_planned") if "planned" in r["servers_basis"] else 1.0
            assert per == spr, r["id"]
            assert float(r["servers_equiv"]) == racks * per * share, r["id"]
