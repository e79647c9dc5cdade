"""CLI: `suanwang simulate` (to be filled)."""


def register(app) -> None:
    """Add the `simulate` command to the root app."""
