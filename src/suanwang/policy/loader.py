"""Read residency rules from a YAML policy file (format: docs/formats.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from suanwang.atlas import Atlas
from suanwang.errors import PolicyError, UnknownPlaceError
from suanwang.policy.residency import DATA_PROVINCE, MAINLAND, ResidencyRules, Rule
from suanwang.safeio import load_yaml_text, read_text
from suanwang.workload.job import DataClass

KEYS = {"id", "description", "data_classes", "tenants", "within", "labels", "sites"}


def _names(value, file: str, row: int, key: str) -> list[str]:
    """A YAML scalar or list as a list of non-empty strings."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int) and str(v).strip() for v in items):
        raise PolicyError(file, row, key, f"{value!r} is not a name or a list of names", "write e.g. [henan, hubei]")
    return [str(v).strip() for v in items]


def parse_rules(raw, atlas: Atlas, file: str = "policy") -> ResidencyRules:
    """Rules from parsed YAML ({'name': ..., 'rules': [...]}); errors name the file, the rule number and field."""
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise PolicyError(file, None, "rules", "is missing or not a list", "start the file with 'rules:' and a list")
    rules, seen = [], set()
    for n, entry in enumerate(raw["rules"], start=1):
        if not isinstance(entry, dict):
            raise PolicyError(file, n, None, "is not a mapping", "give each rule as 'id: ..., within: ...'")
        unknown = set(entry) - KEYS
        if unknown:
            raise PolicyError(file, n, sorted(unknown)[0], "is not a rule field", f"use only {', '.join(sorted(KEYS))}")
        rid = str(entry.get("id") or "").strip()
        if not rid:
            raise PolicyError(file, n, "id", "is missing", "give each rule an id such as R4")
        if rid in seen:
            raise PolicyError(file, n, "id", f"'{rid}' is used twice", "give each rule its own id")
        seen.add(rid)
        classes = []
        for v in _names(entry.get("data_classes"), file, n, "data_classes"):
            try:
                classes.append(DataClass(v.lower()))
            except ValueError:
                raise PolicyError(
                    file, n, "data_classes", f"'{v}' is not one of {', '.join(DataClass)}", "fix the data class"
                ) from None
        within_raw = entry.get("within")
        within: str | frozenset[str] = ""
        if isinstance(within_raw, str) and within_raw.strip().lower() in (MAINLAND, DATA_PROVINCE):
            within = within_raw.strip().lower()
        elif within_raw is not None:
            provinces = []
            for v in _names(within_raw, file, n, "within"):
                try:
                    provinces.append(atlas.find_province(v).id)
                except UnknownPlaceError as e:
                    raise PolicyError(
                        file, n, "within", str(e), f"use {MAINLAND}, {DATA_PROVINCE} or province names"
                    ) from None
            within = frozenset(provinces)
        sites = []
        for v in _names(entry.get("sites"), file, n, "sites"):
            try:
                sites.append(atlas.site(v).id)
            except UnknownPlaceError as e:
                raise PolicyError(file, n, "sites", str(e), "use site ids from `suanwang atlas sites`") from None
        labels = frozenset(_names(entry.get("labels"), file, n, "labels"))
        if not (within or labels or sites):
            raise PolicyError(file, n, "within", "rule constrains nothing", "give within, labels or sites")
        rules.append(
            Rule(
                rid,
                str(entry.get("description") or ""),
                frozenset(classes),
                frozenset(_names(entry.get("tenants"), file, n, "tenants")),
                within,
                labels,
                frozenset(sites),
            )
        )
    return ResidencyRules(tuple(rules), name=str(raw.get("name") or file))


def load_rules(path: str | Path, atlas: Atlas) -> ResidencyRules:
    """Residency rules from a YAML policy file; PolicyError names the file, rule number and field."""
    path = Path(path)
    text = read_text(path, shown_as=path.name, error=PolicyError)  # size limit; UTF-8 checked
    raw = load_yaml_text(text, path.name, error=PolicyError)  # depth and alias limits
    return replace(parse_rules(raw, atlas, path.name), text=text)  # the text: for audits that read it themselves
