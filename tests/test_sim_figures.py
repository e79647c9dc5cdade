"""docs/simulation.md's "Current figures" come from scripts/sim_figures.py: the small run is rerun here and must be
in the docs as printed; the main run (`make run`, minutes) must name its command and the commit it came from."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "simulation.md"


def _script():
    spec = importlib.util.spec_from_file_location("sim_figures", ROOT / "scripts" / "sim_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _generated(mod) -> str:
    doc = DOC.read_text(encoding="utf-8")
    assert mod.BEGIN in doc and mod.END in doc, "docs/simulation.md keeps the markers of scripts/sim_figures.py"
    return doc[doc.index(mod.BEGIN) : doc.index(mod.END)]


def test_small_run_figures_in_the_docs_are_current():
    mod = _script()
    assert "\n".join(mod.small_section()) in _generated(mod), "run: python scripts/sim_figures.py --write"


def test_main_figures_name_their_command_and_commit_and_add_up():
    mod = _script()
    text = _generated(mod)
    m = re.search(
        r"`make run` \(`suanwang simulate`: ([\d,]+) jobs, 7 days, seed 1\), code at commit ([0-9a-f]{7,})", text
    )
    assert m, "the main table says which command and which commit made it"
    jobs = int(m.group(1).replace(",", ""))
    main = text[m.end() : text.index("The same run")]
    rows = [r.split("|")[1:-1] for r in main.splitlines() if r.startswith("| ") and not r.startswith("| policy")]
    names = [r[0].strip() for r in rows]
    assert names == "local-only,nearest,cheapest,greenest,round-robin,online,batch-lp".split(","), names
    for r in rows:  # done + rejected + failed = every job; the baseline's ratios are 1
        assert sum(int(c.replace(",", "")) for c in r[1:4]) == jobs, r
    assert [c.strip() for c in rows[0][6:9]] == ["1.000"] * 3
