"""Executors dispatch placed jobs to a site's engine. Only `local` exists; Slurm, Kubernetes and Ray come next."""

from suanwang.service.executors.base import ExecRequest, ExecStatus, Executor
from suanwang.service.executors.local import LocalExecutor

__all__ = ["ExecRequest", "ExecStatus", "Executor", "LocalExecutor"]
