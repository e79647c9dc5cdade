"""数盾 shield: residency / compliance rules shared by the scheduler's filters and by audits."""

from suanwang.policy.loader import load_rules, parse_rules
from suanwang.policy.residency import ResidencyRules, Rule, Shield, national_rules

__all__ = ["ResidencyRules", "Rule", "Shield", "load_rules", "national_rules", "parse_rules"]
