"""Print the generated part of docs/data.md ("What the 2023 factors and the tariffs change") as Markdown.

Usage:  python scripts/data_changes.py            # print
        python scripts/data_changes.py --write    # replace the section between the markers in docs/data.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from suanwang.atlas import load_atlas
from suanwang.atlas.carbon import DEFAULT_ORIGINS, carbon_of_moving_west
from suanwang.atlas.tariffs import PERIOD

DOC = Path(__file__).resolve().parents[1] / "docs/data.md"
BEGIN, END = "<!-- begin: scripts/data_changes.py -->", "<!-- end: scripts/data_changes.py -->"


def _hours(codes: str, wanted: str) -> str:
    """'VVVV...' half-hour codes -> '00-07, 23-24' for the half hours whose code is in `wanted`."""
    spans, start = [], None
    for i, c in enumerate(codes + "#"):
        if c in wanted and start is None:
            start = i
        elif c not in wanted and start is not None:
            spans.append(f"{start / 2:04.1f}-{i / 2:04.1f}".replace(".0", "").replace(".5", ":30"))
            start = None
    return ", ".join(spans) or "-"


def carbon_table() -> list[str]:
    """Grid-carbon change of moving work west, 2022 vs 2023 factors."""
    origins = DEFAULT_ORIGINS.split(",")
    rows = {y: carbon_of_moving_west(load_atlas(y), origins) for y in (2022, 2023)}
    sites = list(dict.fromkeys(r["site"] for r in rows[2023]))
    out = [
        "| origin | " + " | ".join(sites) + " |",
        "|---|" + "---|" * len(sites),
    ]
    for origin in dict.fromkeys(r["origin"] for r in rows[2023]):
        cells = []
        for site in sites:
            old = next(r for r in rows[2022] if r["origin"] == origin and r["site"] == site)
            new = next(r for r in rows[2023] if r["origin"] == origin and r["site"] == site)
            cells.append(f"{old['change_pct']:+.0f}% -> {new['change_pct']:+.0f}%")
        out.append(f"| {origin} | " + " | ".join(cells) + " |")
    return out


def factor_table() -> list[str]:
    """Provinces whose 2023 factor rose or fell against 2022."""
    atlas = load_atlas()
    moves = sorted(((p.co2(2023) - p.co2(2022), p) for p in atlas.provinces.values()), key=lambda t: t[0])

    def fmt(d: float, p) -> str:
        flag = " (regional-grid fallback, assumption)" if p.co2_basis == "assumption" else ""
        return f"{p.name_zh} {p.co2(2022):.4f} -> {p.co2(2023):.4f}{flag}"

    return [
        f"- **Down ({sum(d < 0 for d, _ in moves)})**: " + "; ".join(fmt(d, p) for d, p in moves if d < 0),
        f"- **Up ({sum(d > 0 for d, _ in moves)})**: " + "; ".join(fmt(d, p) for d, p in moves if d > 0),
    ]


def tariff_table() -> list[str]:
    """Each national cluster's tariff area, hours source, price basis and January / July valleys."""
    atlas = load_atlas()
    out = [
        "| site | tariff area (hours, confidence) | average CNY/kWh | period prices | valley + deep valley Jan "
        "| valley + deep valley Jul |",
        "|---|---|---|---|---|---|",
    ]
    valley = "".join(k for k, v in PERIOD.items() if v in ("valley", "deep_valley"))
    for s in atlas.sites:
        if s.kind != "national-cluster":
            continue
        area = atlas.tariffs.areas[atlas.tariff_area(s)]
        snap = area.price
        prices = f"sourced {snap.price_month} (grade {snap.confidence})" if snap else "assumption (median ratios)"
        out.append(
            f"| {s.name_en} | {area.name_zh} {area.doc_id} ({area.confidence}) | {s.price_cny_per_kwh:.3f} | {prices} "
            f"| {_hours(area.codes[1], valley)} | {_hours(area.codes[7], valley)} |"
        )
    return out


def section() -> str:
    """The generated Markdown section, markers included."""
    lines = [
        BEGIN,
        "",
        "Grid-carbon change of moving work from an eastern city to a western cluster (location-based provincial",
        "factors, site vs origin province; 2022 -> 2023 factors; Tianfu and Chongqing are demand-side clusters now",
        "and no longer in this table):",
        "",
        *carbon_table(),
        "",
        "Provincial factors, 2022 -> 2023 (kgCO2/kWh):",
        "",
        *factor_table(),
        "",
        "Tariffs of the national clusters (hours from the area's notice; valley hours in local time):",
        "",
        *tariff_table(),
        "",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    text = section()
    if "--write" in sys.argv[1:]:
        doc = DOC.read_text(encoding="utf-8")
        a, b = doc.index(BEGIN), doc.index(END) + len(END)
        DOC.write_text(doc[:a] + text + doc[b:], encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
