"""Tenants, their fair-share weights and their quotas, from a YAML file (format: docs/tenancy.md).

A quota rule caps one tenant's cores and / or cards in use at once, nationally or in a region: `within` or
`outside` a list of places, each a province (id, adcode, 中文 or English name), a hub id (`suanwang atlas
hubs`) or `west` (the sites of the western hubs). "bank-a: at most 4,000 cores, at most 1,000 of them outside
Shanghai" is two rules. A rule may let its tenant borrow (`borrow_cores`, `borrow_cards`) from the idle room
of its cohort (`cohorts`); `spill_over` orders the places each tenant's jobs go to; `priority_classes` and
`preemption` are read by policy/priorities.py. Errors name the file, the rule number and the field, with the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from suanwang.atlas import Atlas
from suanwang.errors import PolicyError, UnknownPlaceError

WEST = "west"  # the sites of the hubs whose role is west
RULE_KEYS = {"id", "description", "tenant", "cores", "cards", "within", "outside", "borrow_cores", "borrow_cards"}
FILE_KEYS = {"name", "half_life_h", "tenants", "demand", "quotas"}
FILE_KEYS |= {"cohorts", "spill_over", "priority_classes", "preemption"}  # borrowing, places, classes
# Assumption: a day of memory. Slurm's PriorityDecayHalfLife defaults to 7 days; runs here last days, not months.
DEFAULT_HALF_LIFE_H = 24.0


@dataclass(frozen=True)
class Region:
    """A set of sites by province ids, hub ids and the western hubs; `outside`: every site not in the set."""

    provinces: frozenset[str] = frozenset()
    hubs: frozenset[str] = frozenset()
    west: bool = False
    outside: bool = False
    text: str = ""  # as written, for reasons ("outside shanghai")

    @property
    def key(self) -> tuple:
        """The set of sites it names, without the text (two rules share a cohort pool when their keys match)."""
        return (self.provinces, self.hubs, self.west, self.outside)


@dataclass(frozen=True)
class QuotaRule:
    """At most `cores` cores and / or `cards` cards of `tenant` in use at once in `region` (None: nationally)."""

    id: str
    tenant: str
    cores: int | None = None
    cards: int | None = None
    region: Region | None = None
    description: str = ""
    borrow_cores: int = 0  # cores the tenant may use beyond `cores` from its cohort's idle room in the region
    borrow_cards: int = 0

    def text(self) -> str:
        """'at most 1000 cores outside shanghai' (what the rule says, for reasons)."""
        caps = [f"{v} {u}" for v, u in ((self.cores, "cores"), (self.cards, "cards")) if v is not None]
        where = self.region.text if self.region is not None else "nationally"
        return f"at most {' and '.join(caps)} {where}"


@dataclass(frozen=True)
class Tenancy:
    """A tenancy file: weights per tenant (others weigh `default_weight`), the usage half-life, quota rules."""

    name: str = "tenants"
    weights: dict[str, float] | None = None
    rules: tuple[QuotaRule, ...] = ()
    half_life_h: float = DEFAULT_HALF_LIFE_H
    default_weight: float = 1.0
    demand: dict[str, float] | None = None  # share of generated jobs per tenant (None: jobs keep their tenant)
    cohorts: dict[str, tuple[str, ...]] | None = None  # cohort -> its tenants (each tenant in at most one)
    spill_over: dict[str, tuple[Region, ...]] | None = None  # tenant -> its places, most preferred first
    priorities: object = None  # policy.priorities.Priorities (classes and preemption), None: no classes

    def cohort(self, tenant: str) -> str | None:
        """The cohort `tenant` belongs to, or None."""
        for name, members in (self.cohorts or {}).items():
            if tenant in members:
                return name
        return None

    def weight(self, tenant: str) -> float:
        """The fair-share weight of `tenant` (> 0)."""
        return (self.weights or {}).get(tenant, self.default_weight)


def _count(value, file: str, row: int, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
        raise PolicyError(file, row, key, f"{value!r} is not a whole number >= 0", f"write e.g. '{key}: 4000'")
    return int(value)


def _region(value, outside: bool, atlas: Atlas, file: str, row: int, key: str) -> Region:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str | int) and str(v).strip() for v in items):
        raise PolicyError(file, row, key, f"{value!r} is not a place or a list of places", "write e.g. [shanghai]")
    provinces, hubs, west = set(), set(), False
    for v in (str(v).strip() for v in items):
        if v.lower() == WEST:
            west = True
        elif v.lower() in atlas.hubs:
            hubs.add(v.lower())
        else:
            try:
                provinces.add(atlas.find_province(v).id)
            except UnknownPlaceError as e:
                raise PolicyError(
                    file, row, key, str(e), f"use province names, hub ids ({', '.join(atlas.hubs)}) or {WEST}"
                ) from None
    names = ", ".join(str(v).strip() for v in items)
    return Region(frozenset(provinces), frozenset(hubs), west, outside, f"{key} {names}")


def _weights(raw, file: str, key: str) -> dict[str, float]:
    """A mapping tenant -> number > 0 (`key`: tenants for weights, demand for shares of the jobs)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyError(file, None, key, "is not a mapping", f"write e.g. '{key}: {{bank-a: 2, lab: 1}}'")
    out = {}
    for name, w in raw.items():
        ok = isinstance(w, int | float) and not isinstance(w, bool) and 0 < w < math.inf
        if not ok:
            raise PolicyError(file, None, f"{key}.{name}", f"{w!r} is not a number > 0", "give e.g. 1 or 0.5")
        out[str(name)] = float(w)
    return out


def parse_tenancy(raw, atlas: Atlas, file: str = "tenants") -> Tenancy:
    """A tenancy from parsed YAML; PolicyError names the file, the quota rule number and the field."""
    if not isinstance(raw, dict):
        raise PolicyError(file, None, None, "is not a mapping", "start the file with 'tenants:' and 'quotas:'")
    unknown = set(raw) - FILE_KEYS
    if unknown:
        raise PolicyError(file, None, sorted(unknown)[0], "is not a field", f"use only {', '.join(sorted(FILE_KEYS))}")
    half = raw.get("half_life_h", DEFAULT_HALF_LIFE_H)
    if isinstance(half, bool) or not isinstance(half, int | float) or not half > 0:
        raise PolicyError(file, None, "half_life_h", f"{half!r} is not hours > 0", "write e.g. 'half_life_h: 24'")
    entries = raw.get("quotas") or []
    if not isinstance(entries, list):
        raise PolicyError(file, None, "quotas", "is not a list", "give the quotas as a list of '- id: ...' rules")
    rules, seen = [], set()
    for n, e in enumerate(entries, start=1):
        if not isinstance(e, dict):
            raise PolicyError(file, n, None, "is not a mapping", "give each quota as 'id: Q1, tenant: ..., cores: ...'")
        bad = set(e) - RULE_KEYS
        if bad:
            fix = f"use only {', '.join(sorted(RULE_KEYS))}"
            raise PolicyError(file, n, sorted(bad)[0], "is not a quota field", fix)
        rid = str(e.get("id") or "").strip()
        if not rid:
            raise PolicyError(file, n, "id", "is missing", "give each quota an id such as Q1")
        if rid in seen:
            raise PolicyError(file, n, "id", f"'{rid}' is used twice", "give each quota its own id")
        seen.add(rid)
        tenant = str(e.get("tenant") or "").strip()
        if not tenant:
            raise PolicyError(file, n, "tenant", "is missing", "name the tenant the quota binds, e.g. bank-a")
        cores, cards = _count(e.get("cores"), file, n, "cores"), _count(e.get("cards"), file, n, "cards")
        if cores is None and cards is None:
            raise PolicyError(file, n, "cores", "quota caps nothing", "give cores, cards or both")
        if "within" in e and "outside" in e:
            raise PolicyError(file, n, "outside", "is given with within", "give one of within / outside")
        region = None
        for key in ("within", "outside"):
            if key in e:
                region = _region(e[key], key == "outside", atlas, file, n, key)
        borrow = {}
        for key, cap in (("borrow_cores", cores), ("borrow_cards", cards)):
            borrow[key] = _count(e.get(key), file, n, key) or 0
            if borrow[key] and cap is None:
                res = key.split("_")[1]
                raise PolicyError(file, n, key, f"borrows {res} the rule does not cap", f"give '{res}:' as well")
        desc = str(e.get("description") or "")
        rules.append(QuotaRule(rid, tenant, cores, cards, region, desc, borrow["borrow_cores"], borrow["borrow_cards"]))
    cohorts = _cohorts(raw.get("cohorts"), file)
    for n, r in enumerate(rules, start=1):
        if (r.borrow_cores or r.borrow_cards) and not any(r.tenant in m for m in cohorts.values()):
            key = "borrow_cores" if r.borrow_cores else "borrow_cards"
            fix = f"add {r.tenant} to a cohort, e.g. 'cohorts: {{finance: [{r.tenant}, bank-b]}}'"
            raise PolicyError(file, n, key, f"tenant {r.tenant} is in no cohort to borrow from", fix)
    weights, demand = _weights(raw.get("tenants"), file, "tenants"), _weights(raw.get("demand"), file, "demand")
    spill = _spill(raw.get("spill_over"), atlas, file)
    prio = None
    if raw.get("priority_classes") is not None or raw.get("preemption") is not None:
        from suanwang.policy.priorities import parse_priorities

        prio = parse_priorities(raw.get("priority_classes"), raw.get("preemption"), file)
    return Tenancy(
        str(raw.get("name") or file),
        weights,
        tuple(rules),
        float(half),
        demand=demand or None,
        cohorts=cohorts or None,
        spill_over=spill or None,
        priorities=prio,
    )


def _cohorts(raw, file: str) -> dict[str, tuple[str, ...]]:
    """cohort name -> its tenants; a tenant in two cohorts is an error (its borrowing would be ambiguous)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyError(
            file, None, "cohorts", "is not a mapping", "write e.g. 'cohorts: {finance: [bank-a, bank-b]}'"
        )
    out, seen = {}, {}
    for name, members in raw.items():
        if not isinstance(members, list) or not members or not all(isinstance(m, str) and m.strip() for m in members):
            raise PolicyError(file, None, f"cohorts.{name}", f"{members!r} is not a list of tenants", "write [a, b]")
        for m in members:
            if m.strip() in seen:
                fix = f"keep {m.strip()} in one cohort ({seen[m.strip()]})"
                raise PolicyError(file, None, f"cohorts.{name}", f"tenant {m.strip()} is in two cohorts", fix)
            seen[m.strip()] = str(name)
        out[str(name)] = tuple(m.strip() for m in members)
    return out


def _spill(raw, atlas: Atlas, file: str) -> dict[str, tuple[Region, ...]]:
    """tenant -> its ordered places (each a region as in the quota rules: province, hub id or west)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        fix = "write e.g. 'spill_over: {bank-a: [shanghai, yangtze-delta, west]}'"
        raise PolicyError(file, None, "spill_over", "is not a mapping", fix)
    out = {}
    for tenant, places in raw.items():
        key = f"spill_over.{tenant}"
        if not isinstance(places, list) or not places:
            raise PolicyError(file, None, key, f"{places!r} is not a list of places", "write e.g. [shanghai, west]")
        out[str(tenant)] = tuple(replace(_region(p, False, atlas, file, None, key), text=str(p)) for p in places)
    return out


def load_tenancy(path: str | Path, atlas: Atlas) -> Tenancy:
    """A tenancy file (YAML); PolicyError names the file, the quota rule number and the field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise PolicyError(path.name, None, None, f"is not valid YAML ({e})", "check indentation and colons") from None
    except OSError as e:
        raise PolicyError(path.name, None, None, f"cannot be read ({e.strerror})", "give an existing file") from None
    return parse_tenancy(raw, atlas, path.name)
