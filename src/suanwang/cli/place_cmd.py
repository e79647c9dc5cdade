"""CLI: `suanwang place` (to be filled)."""


def register(app) -> None:
    """Add the `place` command to the root app."""
