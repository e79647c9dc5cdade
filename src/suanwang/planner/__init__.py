"""The planner: where a new hub should go (facility location with HiGHS), what it serves and changes."""
