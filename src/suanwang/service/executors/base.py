"""The executor interface: how the service hands a placed job to a site's own engine and watches it.

An engine adapter (local subprocess; Slurm and Ray driven by a site agent) implements four calls. The returned
`ref` is an opaque string stored with the job, so any replica - or the same one after a restart - can poll it.
Engines that a site agent drives also implement `capacity()` (free room read from the engine, so the scheduler
sees real numbers) and `find()` (reconciliation: a job already in the engine is adopted, never resubmitted).
A site agent may call `find()` and `submit()` for different jobs from several threads at once. An agent sets
`owner` (a tag naming its site in one service) before it submits anything; engines that can carry it with a job
implement `owned()`, which lists only jobs carrying that tag, so an agent's orphan sweep never touches a job it did
not submit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ExecRequest:
    """What an engine needs to run one job: its id, shell command (None: no real work) and resources (cores, cards,
    hours, GB of memory and of output; the local executor turns them into limits)."""

    job_id: str
    command: str | None
    cpu_cores: int
    gpu_cards: int
    runtime_h: float
    mem_gb: float = 0.0  # 0: not stated
    output_gb: float = 0.0


@dataclass(frozen=True)
class ExecStatus:
    """Where a dispatched job stands: still running, done (exit code 0) or failed, with a short message."""

    state: Literal["running", "done", "failed"]
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True)
class EngineCapacity:
    """Room an engine reports for its site: total and free cores and cards, whether it takes jobs (`up`), whether it
    answers at all (`reachable`), and why not."""

    cpu_total: int
    cpu_free: int
    gpu_total: int
    gpu_free: int
    up: bool = True
    message: str = ""
    reachable: bool = True  # False: the engine does not answer at all (up is then False too)


class Executor(ABC):
    """A site's engine as the service sees it."""

    name: str
    owner: str = ""  # the submitting site's tag (letters, digits, '.', '_', '-'); "" : jobs carry none

    @abstractmethod
    def submit(self, request: ExecRequest) -> str:
        """Start the job; return the engine's reference for it."""

    @abstractmethod
    def poll(self, ref: str) -> ExecStatus:
        """The job's current status."""

    @abstractmethod
    def cancel(self, ref: str) -> None:
        """Stop the job if it still runs (no error when it has already ended)."""

    @abstractmethod
    def logs(self, ref: str) -> str:
        """The job's captured output (stdout then stderr), possibly empty."""

    def poll_many(self, refs: list[str]) -> dict[str, ExecStatus]:
        """The status of each of `refs` (an engine may read them all in one call); a ref it could not read this
        time (the engine did not answer) is left out of the answer."""
        out = {}
        for ref in refs:
            try:
                out[ref] = self.poll(ref)
            except (OSError, ValueError, RuntimeError):
                continue
        return out

    def capacity(self) -> EngineCapacity | None:
        """Total and free room read from the engine itself; None where the engine cannot tell (the local one)."""
        return None

    def find(self, job_id: str) -> str | None:
        """The reference of a job with this id already in the engine (by job name / metadata), else None."""
        return None

    def owned(self) -> list[tuple[str, str]]:
        """(job id, reference) of every job still pending or running in the engine that carries this executor's
        `owner` tag (none when `owner` is empty or the engine cannot tell)."""
        return []
