"""Options shared by the `suanwang` commands (`--json`, `--province`, `--scenario`, `--carbon-year`) and the atlas
they select."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from suanwang.atlas import Atlas, load_atlas

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProvinceOpt = Annotated[str | None, typer.Option("--province", "-p", help="Province id or name (河南 / Henan).")]
ScenarioOpt = Annotated[
    Path | None, typer.Option("--scenario", "-s", help="Scenario YAML whose overrides apply (see docs/data.md).")
]
CarbonYearOpt = Annotated[
    int | None,
    typer.Option(
        "--carbon-year",
        help="Year of the MEE/NBS grid CO2 factors: 2021, 2022 or 2023 (default: scenario's, else 2023).",
    ),
]


def atlas_for(scenario: Path | None, carbon_year: int | None = None) -> Atlas:
    """The national atlas, or the scenario's atlas when a scenario file is given; `carbon_year` (checked)
    overrides the default / the scenario's carbon year."""
    if scenario is None:
        return load_atlas().with_carbon_year(carbon_year)
    from suanwang.atlas.scenario import load_scenario

    return load_scenario(scenario).atlas.with_carbon_year(carbon_year)
