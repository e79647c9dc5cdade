"""The `suanwang` command line: one typer app; each layer's commands live in their own module."""

from __future__ import annotations

import os
import sys

import typer

from suanwang.cli import (
    agent_cmd,
    atlas_cmd,
    client_cmd,
    network_cmd,
    place_cmd,
    plan_cmd,
    service_cmd,
    simulate_cmd,
    tenancy_cmd,
)
from suanwang.cli.common import err_console, one_line

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="suanwang 算网 - computing-power network scheduler and planner for 东数西算.",
)
app.add_typer(atlas_cmd.app, name="atlas", help="The national atlas (数纽): sites, provinces, places.")
app.add_typer(network_cmd.app, name="network", help="The network model (数网): latency, coverage, matrix.")
app.add_typer(plan_cmd.app, name="plan", help="The planner: where a new hub should go, what it serves and changes.")
place_cmd.register(app)
plan_cmd.register(app)
simulate_cmd.register(app)
service_cmd.register(app)
client_cmd.register(app)
agent_cmd.register(app)
tenancy_cmd.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry: run the app; a usage error (bad option value, unknown option) is one line, exit code 2; an
    unexpected error (a bug) is one line too, exit code 1."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.TyperException as e:  # click's usage errors: BadParameter, NoSuchOption, MissingParameter, ...
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:  # a bare group: its help
            sys.stdout.write(ctx.get_help() + "\n")
            sys.exit(0)
        where = f" - see `{ctx.command_path} --help`" if ctx is not None else ""
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        err_console.print(f"[red]error:[/red] {one_line(message)}{where}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err_console.print("[red]error:[/red] interrupted", highlight=False)
        sys.exit(130)
    except Exception as e:  # a bug, not the user's input: still one line (SUANWANG_DEBUG=1 shows the traceback)
        if os.environ.get("SUANWANG_DEBUG"):
            raise
        problem = one_line(f"{type(e).__name__}: {e}")[:300]
        err_console.print(
            f"[red]error:[/red] unexpected {problem} - this is a bug; SUANWANG_DEBUG=1 shows where",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
