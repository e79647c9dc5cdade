"""The one registry of policies (name -> policy object), and scoring weights from text or YAML."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from pathlib import Path

from suanwang.errors import PolicyError
from suanwang.safeio import load_yaml
from suanwang.scheduler import baselines
from suanwang.scheduler.context import SchedulerContext
from suanwang.scheduler.online import SCORES, online_policy
from suanwang.scheduler.policy import Policy


def _online(ctx: SchedulerContext, weights: Mapping[str, float], *, cache: bool, **_) -> Policy:
    return online_policy(ctx, weights, cache=cache)


def _batch_lp(ctx: SchedulerContext, weights: Mapping[str, float], *, cache: bool, **options) -> Policy:
    from suanwang.scheduler.hybrid import BatchHybrid

    return BatchHybrid(ctx, weights or None, cache=cache, **options)


def _baseline(build: Callable) -> Callable:
    return lambda ctx, weights, *, cache, **_: build(ctx, cache=cache)


# Every policy by name, in the order results list them: the status quo first, the batch hybrid last.
REGISTRY: dict[str, Callable[..., Policy]] = {
    "local-only": _baseline(baselines.local_only),
    "nearest": _baseline(baselines.nearest),
    "cheapest": _baseline(baselines.cheapest),
    "greenest": _baseline(baselines.greenest),
    "round-robin": _baseline(baselines.round_robin),
    "online": _online,
    "batch-lp": _batch_lp,
}
POLICIES: tuple[str, ...] = tuple(REGISTRY)
WINDOWED: tuple[str, ...] = ("batch-lp",)  # policies that defer jobs to plans (see policy.Policy)


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


def with_spill_over(policy: Policy, ctx: SchedulerContext, tenancy=None) -> Policy:
    """`policy` with the tenancy's ordered spill-over per tenant (scheduler/plugins/spillover.py); unchanged
    when the tenancy (policy/quotas.Tenancy) names none."""
    if tenancy is None or not tenancy.spill_over:
        return policy
    from suanwang.scheduler.plugins.spillover import SpillOver, SpillTiers
    from suanwang.scheduler.quotas import west_hubs

    return SpillOver(policy, SpillTiers(tenancy.spill_over, ctx.sites, west_hubs(ctx.atlas.hubs)))


def make_policy(
    name: str,
    ctx: SchedulerContext,
    weights: Mapping[str, float] | None = None,
    *,
    cache: bool = True,
    window_h: float = 1.0,
    slot_h: float = 1.0,
) -> Policy:
    """The policy called `name` (one of POLICIES). `weights` apply to the online pipeline (online, and batch-lp's
    online part and plan); `window_h` / `slot_h` (hours between plans, hours per plan slot) to batch-lp only."""
    build = REGISTRY.get(name)
    if build is None:
        close = difflib.get_close_matches(name, POLICIES, n=3, cutoff=0.4)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise PolicyError(
            "policy", None, "name", f"'{name}' is not a policy{hint}", f"use one of {', '.join(POLICIES)}"
        )
    return build(ctx, check_weights(weights or {}), cache=cache, window_h=window_h, slot_h=slot_h)
