"""The error hierarchy. Every message names what was wrong and how to fix it."""


class SuanwangError(Exception):
    """Base class: an error a user can act on. The CLI prints its message, never a traceback."""


class DataError(SuanwangError):
    """A shipped or user-supplied table is malformed (names the file, row and field)."""

    def __init__(self, file: str, row: int | None, field: str | None, problem: str, fix: str = ""):
        where = file + (f", row {row}" if row is not None else "") + (f", field '{field}'" if field else "")
        msg = f"{where}: {problem}" + (f" - {fix}" if fix else "")
        super().__init__(msg)
        self.file, self.row, self.field = file, row, field


class ScenarioError(DataError):
    """A scenario YAML file (or a CSV it references) is invalid."""


class UnknownPlaceError(SuanwangError):
    """A place or site name did not resolve; the message suggests the closest names."""

    def __init__(self, name: str, suggestions: list[str], kind: str = "place"):
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown {kind} '{name}'.{hint}")
        self.name, self.suggestions = name, suggestions


class JobError(DataError):
    """A job row (CSV / JSON) is invalid."""


class PolicyError(DataError):
    """A residency / compliance policy file is invalid."""


class InfeasibleJobError(SuanwangError):
    """No site can take a job; the message carries each site's rejection reasons."""
