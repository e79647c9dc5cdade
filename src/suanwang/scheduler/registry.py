"""Policy names -> schedulers, and scoring weights from text or YAML."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from suanwang.errors import PolicyError
from suanwang.safeio import load_yaml
from suanwang.scheduler import baselines
from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.framework import Scheduler
from suanwang.scheduler.online import SCORES, online_policy

POLICIES: tuple[str, ...] = ("online", "local-only", "nearest", "cheapest", "greenest", "round-robin")

_BASELINES = {
    "local-only": baselines.local_only,
    "nearest": baselines.nearest,
    "cheapest": baselines.cheapest,
    "greenest": baselines.greenest,
    "round-robin": baselines.round_robin,
}


def check_weights(weights: Mapping[str, float], file: str = "weights") -> dict[str, float]:
    """Weights validated: known score names, finite numbers >= 0."""
    out = {}
    for k, v in weights.items():
        if k not in SCORES:
            raise PolicyError(file, None, str(k), "is not a score", f"use {', '.join(SCORES)}")
        try:
            w = float(v)
        except (TypeError, ValueError):
            raise PolicyError(file, None, k, f"'{v}' is not a number", "give a weight such as 1 or 0.1") from None
        if not (w >= 0 and w != float("inf")):
            raise PolicyError(file, None, k, f"{v} is not a finite weight >= 0", "give a weight such as 1 or 0.1")
        out[k] = w
    return out


def parse_weights(text: str) -> dict[str, float]:
    """Weights from 'cost=1,carbon=1,latency=0.1'."""
    pairs = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise PolicyError("--weights", None, part, "is not name=value", "write e.g. cost=1,carbon=1,latency=0.1")
        k, v = part.split("=", 1)
        pairs[k.strip()] = v.strip()
    return check_weights(pairs, "--weights")


def load_weights(path: str | Path) -> dict[str, float]:
    """Weights from a YAML file: a mapping score -> weight, optionally under a 'weights:' key."""
    path = Path(path)
    raw = load_yaml(path, shown_as=path.name, error=PolicyError)  # size, depth and alias limits; UTF-8 checked
    if isinstance(raw, dict) and isinstance(raw.get("weights"), dict):
        raw = raw["weights"]
    if not isinstance(raw, dict):
        raise PolicyError(path.name, None, "weights", "is not a mapping", "write e.g. 'cost: 1' lines")
    return check_weights(raw, path.name)


def make_policy(
    name: str, ctx: SchedulerContext, weights: Mapping[str, float] | None = None, *, cache: bool = True
) -> Scheduler:
    """The scheduler called `name` (one of POLICIES); `weights` apply to the online policy only."""
    if name == "online":
        return online_policy(ctx, check_weights(weights or {}), cache=cache)
    if name in _BASELINES:
        return _BASELINES[name](ctx, cache=cache)
    close = difflib.get_close_matches(name, POLICIES, n=3, cutoff=0.4)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise PolicyError("policy", None, "name", f"'{name}' is not a policy{hint}", f"use one of {', '.join(POLICIES)}")
