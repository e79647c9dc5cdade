"""Shared CLI plumbing: rich tables for people, JSON for scripts, and errors without tracebacks."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from suanwang.errors import SuanwangError

# Piped output (CI logs, `| less`) gets a wide table instead of rich's 80-column default; a terminal keeps its width.
_WIDTH = int(os.environ.get("COLUMNS") or 0) or (None if sys.stdout.isatty() else 160)
console = Console(width=_WIDTH)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
err_console = Console(stderr=True, width=_WIDTH)


def one_line(message: str) -> str:
    """`message` on one line: control characters escaped, runs of white space one space, rich markup escaped."""
    return escape(" ".join(safe_text(str(message)).split()))


def fail(message: str) -> None:
    """Print 'error: <message>' as one line on stderr and exit with code 2."""
    err_console.print(f"[red]error:[/red] {one_line(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def friendly_errors(fn: Callable) -> Callable:
    """Decorator: a SuanwangError, a file that cannot be read or written, or an input too deep to handle prints
    one line 'error: ...' on stderr and exits with code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SuanwangError as e:
            fail(str(e))
        except OSError as e:  # a path that cannot be read or written (an unwritable --out, a full disk)
            where = e.filename if e.filename is not None else ""
            fail(f"{where}: {e.strerror or e} - check the path and its permissions")
        except RecursionError:
            fail("the input nests too deeply - flatten it")
        except MemoryError:
            fail("the input is too large for this machine's memory - give a smaller one")

    return wrapper


def safe_text(text: str) -> str:
    """`text` with control characters (other than tab and newline) shown as \\xNN: output cannot drive the
    terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def cell_text(value: Any) -> str:
    """A table cell: empty for None, 3 significant digits for floats, control characters escaped."""
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else safe_text(str(value))


def finite_json(value: Any) -> Any:
    """`value` with every non-finite float (inf, NaN) replaced by None: JSON has no Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def dump_json(payload: Any) -> str:
    """Strict JSON text for scripts (never NaN or Infinity), indented, non-ASCII kept."""
    return json.dumps(finite_json(payload), ensure_ascii=False, indent=2, default=str, allow_nan=False)


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
        sys.stdout.write(dump_json(payload) + "\n")
        return
    columns = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=title, show_lines=False, header_style="bold cyan")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(Text(cell_text(r.get(c))) for c in columns))  # Text: a value is never read as markup
    console.print(table)
    if meta:
        for k, v in meta.items():
            console.print(f"[dim]{k}:[/dim] {v}", highlight=False)


def write_json(payload: Any) -> None:
    """Print any JSON-serialisable payload (UTF-8, Chinese kept readable)."""
    sys.stdout.write(dump_json(payload) + "\n")


def for_table(rows: list[dict], as_json: bool) -> list[dict]:
    """Rows for display: floats keep up to 6 significant digits in tables (emit would round them to 3)."""
    if as_json:
        return rows
    return [{k: format(v, ".6g") if isinstance(v, float) else v for k, v in r.items()} for r in rows]
