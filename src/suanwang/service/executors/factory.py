"""Engine name -> executor, from a site's engine settings (what a site agent drives). Engines' client libraries are
imported only when their engine is asked for, so a service or agent without Ray or Slurm installed still runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from suanwang.service.executors.base import Executor

ENGINES = ("local", "ray", "slurm")


def make_executor(engine: str, settings: dict) -> Executor:
    """The executor for `engine` configured by `settings` (the site's engine_settings); ValueError naming the
    setting to fix when they do not fit."""
    if engine == "local":
        from suanwang.service.executors.local import LocalExecutor

        workdir = Path(settings.get("workdir") or Path(tempfile.gettempdir()) / "suanwang-agent-jobs")
        return LocalExecutor(workdir, float(settings.get("simulated_run_s", 1.0)), bool(settings.get("allow_commands")))
    if engine == "ray":
        from suanwang.service.executors.ray import RayExecutor

        return RayExecutor.from_settings(settings)
    if engine == "slurm":
        from suanwang.service.executors.slurm import SlurmExecutor

        return SlurmExecutor.from_settings(settings)
    raise ValueError(f"engine: unknown engine '{engine}' - use one of {', '.join(ENGINES)}")
