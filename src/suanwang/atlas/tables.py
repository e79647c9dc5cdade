"""Reading the shipped CSV tables: comment lines, numeric fields with errors that name file, row and field."""

from __future__ import annotations

import csv
import importlib.resources
from pathlib import Path

from suanwang.errors import DataError

DATA = importlib.resources.files("suanwang.atlas") / "data"


def read_csv(path, name: str | None = None) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts; lines starting with '#' are comments."""
    name = name or Path(str(path)).name
    with path.open(encoding="utf-8") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines))


def number(row: dict[str, str], key: str, file: str, i: int, *, allow_empty: bool = False) -> float | None:
    """Parse a numeric field; a bad value raises DataError naming file, row and field."""
    raw = (row.get(key) or "").strip()
    if not raw:
        if allow_empty:
            return None
        raise DataError(file, i, key, "is empty", "give a number")
    try:
        return float(raw)
    except ValueError:
        raise DataError(file, i, key, f"'{raw}' is not a number", "give a number such as 0.5") from None
