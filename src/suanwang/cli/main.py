"""The `suanwang` command line: one typer app; each layer's commands live in their own module."""

from __future__ import annotations

import typer

from suanwang.cli import atlas_cmd, client_cmd, network_cmd, place_cmd, service_cmd, simulate_cmd

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="suanwang 算网 - computing-power network scheduler and planner for 东数西算.",
)
app.add_typer(atlas_cmd.app, name="atlas", help="The national atlas (数纽): sites, provinces, places.")
app.add_typer(network_cmd.app, name="network", help="The network model (数网): latency, coverage, matrix.")
place_cmd.register(app)
simulate_cmd.register(app)
service_cmd.register(app)
client_cmd.register(app)


def main() -> None:  # pragma: no cover - console entry
    app()
