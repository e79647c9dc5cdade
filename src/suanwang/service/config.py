"""Service configuration: database URL, bootstrap admin token, loop and heartbeat timings (seconds)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB_URL = "sqlite:///suanwang.db"


@dataclass
class ServiceConfig:
    """How one service process runs. Every timing is in seconds; sizes in bytes.

    loop_interval_s: pause between scheduling-loop ticks.
    heartbeat_timeout_s: a monitored site silent this long is marked down and its jobs re-queued.
    simulated_run_s: wall time a job without a `command` "runs" on the local executor.
    allow_commands: let tenants submit shell commands to the local executor (off by default); each runs in a
        bubblewrap sandbox as an unprivileged uid with limits from its request (executors/local.py).
    batch_size: jobs the loop claims and places per transaction; a full batch is followed at once by the next.
    intake_batch: most single-job submissions stored together in one transaction (group commit).
    max_attempts: runs a job may be given when engines lose it (a retry never goes back to the site that lost it).
    agent_lost_s: an agent site down and silent this long has its running jobs failed as lost (and retried).
    quotas: a tenancy document (`serve --quotas FILE`) the service stores at start; None keeps the stored one.
    auth_cache_s: how long a replica trusts a token it has already checked without asking the database (0: never);
        a deleted token keeps working on a replica for at most this long.
    """

    db_url: str = DEFAULT_DB_URL
    admin_token: str | None = None
    loop: bool = True
    loop_interval_s: float = 0.5
    batch_size: int = 256
    intake_batch: int = 256
    auth_cache_s: float = 10.0
    heartbeat_timeout_s: float = 30.0
    max_attempts: int = 3
    agent_lost_s: float = 600.0
    simulated_run_s: float = 1.0
    allow_commands: bool = False
    max_body_bytes: int = 1 << 20
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "suanwang-jobs")
    policy: str = "online"
    quotas: dict | None = None  # a tenancy document (service/tenancy.py) stored at start, replacing the stored one
    replica: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")

    @classmethod
    def from_env(cls, **overrides) -> ServiceConfig:
        """A config from SUANWANG_* environment variables, then explicit overrides (None values are ignored)."""
        env = os.environ
        cfg = cls(
            db_url=env.get("SUANWANG_DB", DEFAULT_DB_URL),
            admin_token=env.get("SUANWANG_ADMIN_TOKEN") or None,
            allow_commands=env.get("SUANWANG_ALLOW_COMMANDS", "") in ("1", "true", "yes"),
        )
        for key in (
            "SUANWANG_LOOP_INTERVAL_S",
            "SUANWANG_HEARTBEAT_TIMEOUT_S",
            "SUANWANG_SIMULATED_RUN_S",
            "SUANWANG_AUTH_CACHE_S",
            "SUANWANG_AGENT_LOST_S",
        ):
            if key in env:
                setattr(cfg, key.removeprefix("SUANWANG_").lower(), float(env[key]))
        if "SUANWANG_MAX_ATTEMPTS" in env:
            cfg.max_attempts = int(env["SUANWANG_MAX_ATTEMPTS"])
        if "SUANWANG_LOOP" in env:
            cfg.loop = env["SUANWANG_LOOP"] not in ("0", "false", "no")
        if "SUANWANG_WORKDIR" in env:
            cfg.workdir = Path(env["SUANWANG_WORKDIR"])
        if "SUANWANG_POLICY" in env:
            cfg.policy = env["SUANWANG_POLICY"]
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        return cfg

    def to_env(self) -> dict[str, str]:
        """The SUANWANG_* variables that make `from_env` in another process give this config (the loop setting
        aside), for worker processes started by `suanwang serve --workers N`."""
        env = {
            "SUANWANG_DB": self.db_url,
            "SUANWANG_ALLOW_COMMANDS": "1" if self.allow_commands else "0",
            "SUANWANG_LOOP_INTERVAL_S": repr(self.loop_interval_s),
            "SUANWANG_HEARTBEAT_TIMEOUT_S": repr(self.heartbeat_timeout_s),
            "SUANWANG_SIMULATED_RUN_S": repr(self.simulated_run_s),
            "SUANWANG_AUTH_CACHE_S": repr(self.auth_cache_s),
            "SUANWANG_AGENT_LOST_S": repr(self.agent_lost_s),
            "SUANWANG_MAX_ATTEMPTS": str(self.max_attempts),
            "SUANWANG_WORKDIR": str(self.workdir),
            "SUANWANG_POLICY": self.policy,
        }
        if self.admin_token:
            env["SUANWANG_ADMIN_TOKEN"] = self.admin_token
        return env
