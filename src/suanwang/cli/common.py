"""Shared CLI plumbing: rich tables for people, JSON for scripts, and errors without tracebacks."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from suanwang.errors import SuanwangError

# Piped output (CI logs, `| less`) gets a wide table instead of rich's 80-column default; a terminal keeps its width.
_WIDTH = int(os.environ.get("COLUMNS") or 0) or (None if sys.stdout.isatty() else 160)
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)


def friendly_errors(fn: Callable) -> Callable:
    """Decorator: a SuanwangError (or a bad file path) prints 'error: ...' and exits with code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SuanwangError as e:
            err_console.print(f"[red]error:[/red] {e}", highlight=False)
            raise typer.Exit(2) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
            err_console.print(f"[red]error:[/red] {e.strerror}: {e.filename}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    as_json: bool = False,
    title: str | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Print `rows` as a rich table, or as JSON ({"meta": ..., "rows": [...]}) when `as_json`."""
    if as_json:
        payload: Any = {"meta": meta, "rows": list(rows)} if meta else list(rows)
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    columns = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=title, show_lines=False, header_style="bold cyan")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(
            *(
                "" if r.get(c) is None else f"{r.get(c):.3g}" if isinstance(r.get(c), float) else str(r.get(c))
                for c in columns
            )
        )
    console.print(table)
    if meta:
        for k, v in meta.items():
            console.print(f"[dim]{k}:[/dim] {v}", highlight=False)
