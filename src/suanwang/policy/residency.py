"""数盾 residency shield: which sites may hold a job's data, by data class, data province and tenant.

A rule applies to the jobs it names (data classes, tenants; empty = all) and constrains the sites they may
use: `within` ("mainland", "data-province" or a list of province ids), `labels` every site must carry, and
`sites` (an allow-list of site ids). A site passes when it satisfies every applicable rule; otherwise the
first rule it breaks, in file order, is the one a verdict names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from suanwang.atlas.model import Site
from suanwang.workload.job import DataClass

MAINLAND = "mainland"
DATA_PROVINCE = "data-province"


@dataclass(frozen=True)
class Rule:
    """One residency rule: who it applies to and where their data may go."""

    id: str
    description: str = ""
    data_classes: frozenset[DataClass] = frozenset()  # empty: every data class
    tenants: frozenset[str] = frozenset()  # empty: every tenant
    within: str | frozenset[str] = ""  # "mainland", "data-province", a set of province ids, or "" (no bound)
    labels: frozenset[str] = frozenset()  # labels a site must all carry
    sites: frozenset[str] = frozenset()  # allow-list of site ids (empty: no list)

    def applies(self, data_class: DataClass, tenant: str) -> bool:
        """Whether this rule binds a job of `data_class` submitted by `tenant`."""
        return (not self.data_classes or data_class in self.data_classes) and (
            not self.tenants or tenant in self.tenants
        )


@dataclass(frozen=True)
class ResidencyRules:
    """An ordered set of residency rules (a policy file, or the national defaults)."""

    rules: tuple[Rule, ...] = ()
    name: str = "custom"
    text: str = field(default="", compare=False, repr=False)  # the policy file's text, when read from one (audits)

    def bind(self, sites: Sequence[Site], mainland: set[str]) -> Shield:
        """The rules compiled against `sites`; `mainland` is the set of mainland province ids."""
        return Shield(self, list(sites), frozenset(mainland))


def national_rules() -> ResidencyRules:
    """The national defaults: public and internal anywhere in the mainland; sensitive data in its province;
    core data on gov-cloud sites of its province."""
    sensitive_up = frozenset({DataClass.SENSITIVE, DataClass.CORE})
    return ResidencyRules(
        (
            Rule(
                "R1",
                "internal and stricter data stays on mainland sites",
                frozenset({DataClass.INTERNAL, *sensitive_up}),
                within=MAINLAND,
            ),
            Rule("R2", "sensitive data of province P stays in P", sensitive_up, within=DATA_PROVINCE),
            Rule(
                "R3",
                "core data stays on gov-cloud sites of its province",
                frozenset({DataClass.CORE}),
                within=DATA_PROVINCE,
                labels=frozenset({"gov-cloud"}),
            ),
        ),
        name="national",
    )


@dataclass
class Shield:
    """Residency rules compiled over a site list: boolean masks per (data class, data province, tenant), cached."""

    rules: ResidencyRules
    sites: list[Site]
    mainland: frozenset[str]
    _province: np.ndarray = field(init=False, repr=False)
    _cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._province = np.array([s.province_id for s in self.sites], dtype=object)
        self._ids = np.array([s.id for s in self.sites], dtype=object)
        self._labels = [frozenset(s.labels) for s in self.sites]
        self._in_mainland = np.array([s.province_id in self.mainland for s in self.sites], dtype=bool)

    def _rule_mask(self, rule: Rule, data_province: str) -> np.ndarray:
        ok = np.ones(len(self.sites), dtype=bool)
        if rule.within == MAINLAND:
            ok &= self._in_mainland
        elif rule.within == DATA_PROVINCE:
            ok &= self._province == data_province
        elif rule.within:
            ok &= np.isin(self._province, list(rule.within))
        if rule.labels:
            ok &= np.array([rule.labels <= lab for lab in self._labels], dtype=bool)
        if rule.sites:
            ok &= np.isin(self._ids, list(rule.sites))
        return ok

    def check(self, data_class: DataClass | str, data_province: str, tenant: str) -> tuple[np.ndarray, np.ndarray]:
        """(allowed mask over sites, index of the first rule each site breaks or -1), cached per key."""
        key = (data_class, data_province, tenant)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        dc = DataClass(data_class)
        broken = np.full(len(self.sites), -1, dtype=np.int64)
        for r, rule in enumerate(self.rules.rules):
            if rule.applies(dc, tenant):
                bad = ~self._rule_mask(rule, data_province) & (broken < 0)
                broken[bad] = r
        out = (broken < 0, broken)
        out[0].setflags(write=False)
        out[1].setflags(write=False)
        self._cache[key] = out
        return out

    def allowed(self, data_class: DataClass | str, data_province: str, tenant: str) -> np.ndarray:
        """Boolean mask over sites: True where every applicable rule allows the data."""
        return self.check(data_class, data_province, tenant)[0]

    def reason(self, site_index: int, data_class: DataClass | str, data_province: str, tenant: str) -> str:
        """Why site `site_index` is refused, naming the rule ('residency R2: data class sensitive, site in gansu
        != henan'), or '' when it is allowed."""
        r = int(self.check(data_class, data_province, tenant)[1][site_index])
        if r < 0:
            return ""
        rule = self.rules.rules[r]
        site = self.sites[site_index]
        dc = DataClass(data_class).value
        who = f"tenant {tenant}, data class {dc}" if rule.tenants else f"data class {dc}"
        if rule.within == MAINLAND and site.province_id not in self.mainland:
            why = f"site in {site.province_id} is not a mainland province"
        elif rule.within == DATA_PROVINCE and site.province_id != data_province:
            why = f"site in {site.province_id} != {data_province}"
        elif isinstance(rule.within, frozenset) and rule.within and site.province_id not in rule.within:
            why = f"site in {site.province_id} not in allowed provinces {', '.join(sorted(rule.within))}"
        elif rule.labels and not rule.labels <= frozenset(site.labels):
            why = f"site lacks label {', '.join(sorted(rule.labels - frozenset(site.labels)))}"
        else:
            why = f"site {site.id} not in allowed sites {', '.join(sorted(rule.sites))}"
        return f"residency {rule.id}: {who}, {why}"
