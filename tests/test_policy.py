"""The residency shield (数盾): national rules, tenant rules, YAML policy files and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from suanwang.errors import PolicyError, SuanwangError
from suanwang.policy import load_rules, national_rules, parse_rules
from suanwang.workload.job import DataClass

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def shield(atlas):
    return national_rules().bind(atlas.sites, set(atlas.provinces))


def test_public_and_internal_go_anywhere(atlas, shield):
    for dc in (DataClass.PUBLIC, DataClass.INTERNAL):
        assert shield.allowed(dc, "henan", "t").all()


def test_sensitive_stays_in_its_province(atlas, shield):
    mask = shield.allowed("sensitive", "henan", "t")
    assert {atlas.sites[i].id for i in np.flatnonzero(mask)} == {s.id for s in atlas.sites if s.province_id == "henan"}
    gansu = next(i for i, s in enumerate(atlas.sites) if s.province_id == "gansu")
    assert (
        shield.reason(gansu, "sensitive", "henan", "t") == "residency R2: data class sensitive, site in gansu != henan"
    )


def test_core_needs_gov_cloud_in_its_province(atlas, shield):
    mask = shield.allowed("core", "henan", "t")
    allowed = [atlas.sites[i] for i in np.flatnonzero(mask)]
    assert [s.id for s in allowed] == ["henan-dc"]
    ai = next(i for i, s in enumerate(atlas.sites) if s.id == "zhongyuan-ai")
    assert shield.reason(ai, "core", "henan", "t").startswith("residency R3:")
    assert "gov-cloud" in shield.reason(ai, "core", "henan", "t")


def test_a_site_outside_the_mainland_breaks_r1(atlas):
    from dataclasses import replace

    sites = [replace(atlas.sites[0], id="hk-site", province_id="hongkong"), atlas.sites[1]]
    shield = national_rules().bind(sites, set(atlas.provinces))
    assert shield.allowed("public", "shanghai", "t").tolist() == [True, True]
    assert shield.allowed("internal", "shanghai", "t").tolist() == [False, True]
    assert shield.reason(0, "internal", "shanghai", "t").startswith("residency R1:")


def test_masks_are_cached_and_read_only(shield):
    a = shield.allowed("sensitive", "henan", "t")
    assert shield.allowed("sensitive", "henan", "t") is a
    with pytest.raises(ValueError):
        a[0] = True


def test_example_policy_files_load(atlas):
    national = load_rules(EXAMPLES / "policy-national.yaml", atlas)
    assert [r.id for r in national.rules] == [r.id for r in national_rules().rules]
    bank = load_rules(EXAMPLES / "policy-bank.yaml", atlas)
    shield = bank.bind(atlas.sites, set(atlas.provinces))
    allowed = {atlas.sites[i].province_id for i in np.flatnonzero(shield.allowed("public", "shanghai", "bank-a"))}
    assert allowed == {"shanghai", "jiangsu", "zhejiang", "anhui"}
    hosp = {atlas.sites[i].id for i in np.flatnonzero(shield.allowed("public", "hubei", "hospital"))}
    assert hosp == {"hubei-dc", "wuhu"}
    other = shield.allowed("public", "shanghai", "someone-else")
    assert other.all()
    gz = next(i for i, s in enumerate(atlas.sites) if s.province_id == "guangdong")
    assert shield.reason(gz, "public", "shanghai", "bank-a").startswith("residency T1: tenant bank-a")


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"rules": "x"}, "rules", "not a list"),
        ({"rules": [{"within": "mainland"}]}, "id", "missing"),
        ({"rules": [{"id": "A", "within": "mainland"}, {"id": "A", "within": "mainland"}]}, "id", "twice"),
        ({"rules": [{"id": "A", "data_classes": ["secret"], "within": "mainland"}]}, "data_classes", "secret"),
        ({"rules": [{"id": "A", "within": ["atlantis"]}]}, "within", "atlantis"),
        ({"rules": [{"id": "A", "sites": ["nowhere-dc"]}]}, "sites", "nowhere-dc"),
        ({"rules": [{"id": "A", "whithin": "mainland"}]}, "whithin", "not a rule field"),
        ({"rules": [{"id": "A"}]}, "within", "constrains nothing"),
    ],
)
def test_bad_policy_names_rule_and_field(atlas, raw, field, words):
    with pytest.raises(PolicyError) as e:
        parse_rules(raw, atlas, "p.yaml")
    assert e.value.field == field
    assert words in str(e.value) and "p.yaml" in str(e.value)
    assert isinstance(e.value, SuanwangError)


def test_invalid_yaml_is_a_policy_error(atlas, tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("rules: [\n  - id: x", encoding="utf-8")
    with pytest.raises(PolicyError, match="bad.yaml"):
        load_rules(p, atlas)
