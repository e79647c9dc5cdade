"""The plan report's "best" ranking and its cost / carbon columns say what they are: the objective with its weights,
national batch totals per year (not per unit of work), CPU and GPU both counted, which carbon basis; en and zh."""

from __future__ import annotations

import pytest

from suanwang.report.plan_html import plan_strings, render_plan_report


def _payload(carbon_basis: str = "market-based: grid factor x (1 - green share)") -> dict:
    return {
        "map": {"existing": [], "candidates": [], "chosen": [], "coverage": []},
        "ranked": [],
        "sets": [],
        "meta": {
            "objective_weights": {"realtime": 1.0, "interactive": 0.5, "cost": 2.0, "carbon": 1.0},
            "objective": "w_rt x real-time share served within 5 ms - w_cost x batch cost / reference",
            "carbon_basis": carbon_basis,
            "carbon_year": 2023,
        },
    }


@pytest.mark.parametrize(
    "lang, total, carbon, cards",
    [("en", "total", "market-based", "GPU cards"), ("zh", "总量", "市场法", "GPU 卡")],
)
def test_best_and_the_columns_state_their_basis(lang, total, carbon, cards):
    payload = _payload()
    t = plan_strings(lang, payload["meta"])
    note = t["basis_note"]
    assert "interactive 0.5" in note and "cost 2" in note, "the weights the ranking used"
    assert "2023" in note and carbon in note and cards in note and total in note
    assert total in t["cost"] and total in t["carbon"] and carbon in t["carbon"]
    if lang == "en":
        assert payload["meta"]["objective"] in note, "the objective the payload says it used"
    html = render_plan_report(payload, lang)
    for key in ("basis_note", "cost", "carbon", "ranked", "sets"):
        assert t[key] in html, key
    assert "{" not in note + t["carbon"]


@pytest.mark.parametrize("lang, word", [("en", "location-based"), ("zh", "位置法")])
def test_a_location_based_plan_says_so(lang, word):
    t = plan_strings(lang, _payload("location-based: grid factor")["meta"])
    assert word in t["carbon"] and word in t["basis_note"]


def test_a_payload_without_the_fields_still_renders():
    t = plan_strings("en", {})
    assert "market-based" in t["basis_note"] and "—" in t["basis_note"]
