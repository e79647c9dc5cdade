"""CLI: `suanwang serve`, `submit`, `jobs`, `sites` (to be filled)."""


def register(app) -> None:
    """Add the service commands to the root app."""
