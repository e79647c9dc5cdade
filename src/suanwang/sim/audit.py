"""The simulator's residency audit, read from the policy's own text: a second, minimal reader of the YAML format
(docs/formats.md, "Residency policies"), so a bug in the policy loader or the residency shield cannot pass it.

It shares no code with `suanwang.policy` (no loader, no Rule objects, no Shield): the text is parsed with PyYAML
directly, province names are matched here against the atlas's provinces (id, adcode, 中文 or English name), and
each placement is judged from the rule text alone:

- a rule applies to a job when its `data_classes` and `tenants` lists are empty or name the job's;
- it allows a site when every constraint it gives holds: `within: mainland` - the site's province is a mainland
  province of the atlas; `within: data-province` - the site is in the job's data province; `within: [..]` -
  the site is in one of those provinces; `labels` - the site carries all of them; `sites` - the site is listed
  (by id, 中文 or English name);
- a placement is allowed when every rule that applies allows its site.

The text comes from the rules in force: a file read by `policy.load_rules` keeps its text (ResidencyRules.text);
the national defaults are written out below (NATIONAL_POLICY, the same rules as examples/policy-national.yaml);
rules built in code, with no file, are written out from their fields (`rules_text`) - the one case where the
audit reads what the code built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import yaml

MAINLAND = "mainland"
DATA_PROVINCE = "data-province"

# The national rules as a policy file (docs/formats.md; examples/policy-national.yaml spells out the same).
NATIONAL_POLICY = """\
name: national
rules:
  - id: R1
    description: internal and stricter data stays on mainland sites
    data_classes: [internal, sensitive, core]
    within: mainland
  - id: R2
    description: sensitive data of province P stays in P
    data_classes: [sensitive, core]
    within: data-province
  - id: R3
    description: core data stays on gov-cloud sites of its province
    data_classes: [core]
    within: data-province
    labels: [gov-cloud]
"""


class AuditError(ValueError):
    """The policy text cannot be audited (not the format of docs/formats.md); the message says where."""


@dataclass(frozen=True)
class TextRule:
    """One rule as the text gives it: lower-case data classes, tenants, where (mainland / data-province / province
    ids / '' for no bound), labels and site ids."""

    id: str
    data_classes: frozenset[str]
    tenants: frozenset[str]
    within: str | frozenset[str]
    labels: frozenset[str]
    sites: frozenset[str]


def _key(name: str) -> str:
    """A province name as compared here: lower case, without spaces, apostrophes, hyphens, dots, underscores and
    a trailing 省 / 市 (so 'Inner Mongolia', 'inner-mongolia' and 'innermongolia' match)."""
    s = re.sub(r"[\s'’\-_.]", "", str(name).strip().lower())
    return re.sub(r"(省|市)$", "", s) or s


def _names(value) -> list[str]:
    if value is None:
        return []
    return [str(v).strip() for v in (value if isinstance(value, list) else [value])]


def read_policy(text: str, atlas) -> list[TextRule]:
    """The rules of a residency policy's YAML text, provinces resolved to the atlas's ids (AuditError when a
    name is none of the atlas's provinces or the text is not a policy)."""
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise AuditError("policy text: no 'rules:' list")
    province, site_id = {}, {}
    for p in atlas.provinces.values():
        for alias in (p.id, p.adcode, p.name_zh, p.name_en):
            province[_key(alias)] = p.id
    for site in atlas.sites:
        for alias in (site.id, site.name_zh, site.name_en):
            site_id[_key(alias)] = site.id
    out = []
    for n, entry in enumerate(raw["rules"], start=1):
        if not isinstance(entry, dict):
            raise AuditError(f"policy text: rule {n} is not a mapping")
        where = entry.get("within")
        if isinstance(where, str) and where.strip().lower() in (MAINLAND, DATA_PROVINCE):
            within: str | frozenset[str] = where.strip().lower()
        elif where is None:
            within = ""
        else:
            ids = set()
            for name in _names(where):
                if _key(name) not in province:
                    raise AuditError(f"policy text: rule {n}: '{name}' is not a province of the atlas")
                ids.add(province[_key(name)])
            within = frozenset(ids)
        sites = set()
        for name in _names(entry.get("sites")):
            if _key(name) not in site_id:
                raise AuditError(f"policy text: rule {n}: '{name}' is not a site of the atlas")
            sites.add(site_id[_key(name)])
        out.append(
            TextRule(
                id=str(entry.get("id", n)),
                data_classes=frozenset(v.lower() for v in _names(entry.get("data_classes"))),
                tenants=frozenset(_names(entry.get("tenants"))),
                within=within,
                labels=frozenset(_names(entry.get("labels"))),
                sites=frozenset(sites),
            )
        )
    return out


def allows(rules: list[TextRule], data_class: str, tenant: str, data_province: str, site, mainland) -> bool:
    """Whether every rule that applies to (data class, tenant) allows `site` (an atlas Site) for data of
    `data_province`; `mainland`: the mainland province ids."""
    for r in rules:
        if r.data_classes and str(getattr(data_class, "value", data_class)).lower() not in r.data_classes:
            continue
        if r.tenants and tenant not in r.tenants:
            continue
        if r.within == MAINLAND and site.province_id not in mainland:
            return False
        if r.within == DATA_PROVINCE and site.province_id != data_province:
            return False
        if isinstance(r.within, frozenset) and site.province_id not in r.within:
            return False
        if r.labels and not r.labels <= set(site.labels):
            return False
        if r.sites and site.id not in r.sites:
            return False
    return True


def rules_text(rules) -> str:
    """The policy text of the rules in force (a ResidencyRules): the file's own text when it was read from one,
    NATIONAL_POLICY for the national defaults, else the rules' fields written out as a policy file."""
    text = getattr(rules, "text", "")
    if text:
        return text
    if rules.name == "national":
        return NATIONAL_POLICY
    entries = []
    for r in rules.rules:
        entry = {"id": r.id}
        if r.data_classes:
            entry["data_classes"] = sorted(str(getattr(d, "value", d)) for d in r.data_classes)
        if r.tenants:
            entry["tenants"] = sorted(r.tenants)
        if r.within:
            entry["within"] = r.within if isinstance(r.within, str) else sorted(r.within)
        if r.labels:
            entry["labels"] = sorted(r.labels)
        if r.sites:
            entry["sites"] = sorted(r.sites)
        entries.append(entry)
    return yaml.safe_dump({"name": rules.name, "rules": entries}, allow_unicode=True, sort_keys=False)


def allowed_matrix(ctx, keys: list[tuple[str, str, str]]) -> np.ndarray:
    """[keys, sites] bool: whether the policy text in force (`rules_text(ctx.rules)`) allows data of each
    (data class, tenant, data province) key at each site of ctx."""
    rules = read_policy(rules_text(ctx.rules), ctx.atlas)
    mainland = frozenset(ctx.atlas.provinces)
    out = np.array(
        [[allows(rules, dc, tenant, prov, s, mainland) for s in ctx.sites] for dc, tenant, prov in keys],
        dtype=bool,
    )
    return out.reshape(len(keys), len(ctx.sites))
