"""Executors dispatch placed jobs to a site's engine: `local` (embedded in the service), and for site agents `ray`
(`ray.py`) and `slurm` (`slurm.py`); `factory.make_executor` builds one from a site's engine settings."""

from suanwang.service.executors.base import EngineCapacity, ExecRequest, ExecStatus, Executor
from suanwang.service.executors.local import LocalExecutor

__all__ = ["EngineCapacity", "ExecRequest", "ExecStatus", "Executor", "LocalExecutor"]
