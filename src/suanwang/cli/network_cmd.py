"""CLI: `suanwang network ...` (to be filled)."""

import typer

app = typer.Typer(no_args_is_help=True, help="network commands")
