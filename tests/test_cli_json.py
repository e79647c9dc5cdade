"""Strict JSON from every command: non-finite numbers become null, never `NaN` or `Infinity`."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from suanwang.cli.common import dump_json

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


def _same(a, b) -> bool:
    if isinstance(a, float):
        return b is None if not math.isfinite(a) else a == b
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@given(values)
def test_dump_json_is_strict_and_keeps_every_finite_value(value):
    text = dump_json(value)
    back = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert _same(value, back)


def test_table_cells_cannot_drive_the_terminal_or_inject_markup(capsys):
    from suanwang.cli.common import emit

    emit([{"id": "\x1b[2J[red]x[/red]\x9b1m", "n": 1.23456}], ["id", "n"])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out
    assert "\\x1b[2J[red]x[/red]\\x9b1m" in out and "1.23" in out
