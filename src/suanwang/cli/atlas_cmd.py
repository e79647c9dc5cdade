"""CLI: `suanwang atlas ...` (to be filled)."""

import typer

app = typer.Typer(no_args_is_help=True, help="atlas commands")
