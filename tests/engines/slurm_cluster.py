"""A real single-node Slurm cluster for the tests: munged, slurmctld, slurmd and slurmrestd under a temporary folder.

Everything is private to one instance: its own munge key and socket, `slurm.conf` on free ports, state, spool and
log folders, slurmrestd on a Unix socket. Several instances (one per pytest worker) can run on one host. The daemons
run in the foreground as children of this process and `stop()` ends them by PID (jobs first, through Slurm).

Facts this relies on (Debian 12, Slurm 22.05.8): slurmrestd refuses to run as root, so it runs as `nobody` and a
job submitted through it runs as `nobody`; without slurmdbd only `-s openapi/v0.0.38` loads. The Debian packages
come from `make engines`; when they are missing `start()` raises, so the engine tests fail instead of skipping.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "slurmrestd", "sbatch", "scontrol", "squeue", "scancel")
REST_USER = "nobody"
REST_PLUGIN = "openapi/v0.0.38"
START_TIMEOUT_S = 20.0


class ClusterError(RuntimeError):
    """The test cluster cannot start (packages missing, a daemon died); the message says what to do."""


def missing_binaries() -> list[str]:
    """Names of the Slurm / munge programs that are not on PATH (empty when `make engines` has run)."""
    return [name for name in DAEMONS if shutil.which(name) is None]


RAY_WORKER_PORTS = range(10002, 20000)  # a Ray head on the same host gives these to its workers: stay out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside Ray's worker range."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RAY_WORKER_PORTS:
            return port


class SlurmCluster:
    """One single-node Slurm cluster: `start()`, use `env` / `rest_socket` / `partition`, `stop()`.

    `partitions` maps extra partition names to their state (e.g. {"held": "DOWN"}: jobs are accepted and wait);
    `cpus` declares the node's CPUs (default: the host's; more oversubscribes it, for benchmarks of many tiny jobs).
    """

    def __init__(
        self,
        name: str = "swtest",
        partition: str = "batch",
        partitions: dict[str, str] | None = None,
        cpus: int | None = None,
    ):
        self.name = name
        self.partition = partition
        self.extra_partitions = dict(partitions or {})
        self.node = socket.gethostname().split(".")[0]
        self.cpus = cpus or os.cpu_count() or 1  # more than the host has: slurmd takes the configured number
        self.root: Path | None = None
        self._procs: dict[str, subprocess.Popen] = {}

    # paths
    @property
    def conf(self) -> Path:
        return self._root / "slurm.conf"

    @property
    def rest_socket(self) -> Path:
        """slurmrestd's Unix socket."""
        return self._root / "rest" / "slurmrestd.sock"

    @property
    def jobs_dir(self) -> Path:
        """A working-directory root writable by the job users of both submission paths (root, `nobody`)."""
        return self._root / "jobs"

    @property
    def env(self) -> dict[str, str]:
        """Environment for Slurm client commands pointed at this cluster."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    @property
    def _root(self) -> Path:
        if self.root is None:
            raise ClusterError("the Slurm test cluster is not started")
        return self.root

    def cli(self, *args: str, check: bool = True, timeout: float = 15.0) -> subprocess.CompletedProcess:
        """Run a Slurm client command (scontrol, squeue, ...) against this cluster; text output."""
        return subprocess.run(args, env=self.env, capture_output=True, text=True, check=check, timeout=timeout)

    # lifecycle
    def start(self) -> SlurmCluster:
        """Start munged, slurmctld, slurmd and slurmrestd; return once the node is idle and the REST API answers."""
        missing = missing_binaries()
        if missing:
            raise ClusterError(
                f"Slurm is not installed ({', '.join(missing)} missing): run `make engines` (Debian packages "
                "slurmctld slurmd slurm-client slurmrestd munge)"
            )
        if os.geteuid() != 0:
            raise ClusterError("the Slurm test cluster runs slurmd and munged as root: run the tests as root")
        self.root = Path(tempfile.mkdtemp(prefix="sw-slurm-"))
        self.root.chmod(0o755)  # munged and slurmrestd run as other users and must reach their sockets
        try:
            self._start_munge()
            self._write_conf()
            self.start_controller(clean=True)
            self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
            self._wait(self._node_ready, "slurmd to register its node")
            self._start_rest()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_munge(self) -> None:
        d = self._root / "munge"
        d.mkdir(mode=0o755)
        key = d / "munge.key"
        key.write_bytes(os.urandom(128))  # a private key: this cluster trusts nothing else
        munge = pwd.getpwnam("munge")
        for p in (d, key):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        key.chmod(0o400)
        d.chmod(0o755)
        self.munge_socket = d / "munge.socket"
        args = ["munged", "-F", f"--socket={self.munge_socket}", f"--key-file={key}"]
        args += [f"--pid-file={d / 'munged.pid'}", f"--log-file={d / 'munged.log'}", f"--seed-file={d / 'seed'}"]
        self._spawn("munged", args, user=munge.pw_uid, group=munge.pw_gid)
        self._wait(self.munge_socket.exists, "munged to open its socket")

    def _write_conf(self) -> None:
        r = self._root
        for sub in ("state", "log", f"spool/{self.node}", "rest"):
            (r / sub).mkdir(parents=True)
        (r / "jobs").mkdir(mode=0o1777)
        (r / "jobs").chmod(0o1777)
        rest_user = pwd.getpwnam(REST_USER)
        os.chown(r / "rest", rest_user.pw_uid, rest_user.pw_gid)
        parts = [f"PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP"]
        parts += [
            f"PartitionName={p} Nodes={self.node} MaxTime=INFINITE State={s}" for p, s in self.extra_partitions.items()
        ]
        lines = [
            f"ClusterName={self.name}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool' / '%n'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            # without this, jobs start in pairs every ~3 s
            "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
            "EnforcePartLimits=ALL",  # a job no node can ever hold is refused at submission, with Slurm's message
            "GresTypes=gpu",  # GPUs are a known resource; this node has none (cards=0), so a GPU job is refused
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=2",
            *(["SlurmdParameters=config_overrides"] if self.cpus > (os.cpu_count() or 1) else []),
            "MessageTimeout=3",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=4000 State=UNKNOWN",
            *parts,
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def start_controller(self, clean: bool = False) -> None:
        """Start slurmctld (`clean`: forget saved state); return once it answers `scontrol ping`."""
        args = ["slurmctld", "-D", "-f", str(self.conf)] + (["-c", "-i"] if clean else ["-R"])
        self._spawn("slurmctld", args)
        self._wait(lambda: "UP" in self.cli("scontrol", "ping", check=False).stdout, "slurmctld to answer")

    def stop_controller(self) -> None:
        """Stop slurmctld only (the engine goes down; nodes and jobs stay)."""
        self._end("slurmctld")

    def _start_rest(self) -> None:
        rest_user = pwd.getpwnam(REST_USER)
        args = ["slurmrestd", "-f", str(self.conf), "-s", REST_PLUGIN, "-a", "rest_auth/local"]
        self._spawn("slurmrestd", [*args, f"unix:{self.rest_socket}"], user=rest_user.pw_uid, group=rest_user.pw_gid)
        self._wait(self.rest_socket.exists, "slurmrestd to open its socket")

    def _node_ready(self) -> bool:
        out = self.cli("sinfo", "-h", "-n", self.node, "-o", "%T", check=False).stdout.strip()
        return out.startswith("idle") or out.startswith("mixed")

    def _spawn(self, name: str, args: list[str], user: int | None = None, group: int | None = None) -> None:
        log = open(self._root / "log" / f"{name}.out", "ab") if (self._root / "log").exists() else subprocess.DEVNULL
        extra = {"user": user, "group": group, "extra_groups": []} if user is not None else {}
        self._procs[name] = subprocess.Popen(
            args, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **extra
        )
        if log is not subprocess.DEVNULL:
            log.close()

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            dead = [n for n, p in self._procs.items() if p.poll() is not None]
            if dead:
                raise ClusterError(f"{', '.join(dead)} exited while waiting for {what}: see {self._root / 'log'}")
            if ready():
                return
            time.sleep(0.05)
        raise ClusterError(f"timed out after {START_TIMEOUT_S:g} s waiting for {what}: see {self._root / 'log'}")

    def _end(self, name: str, timeout: float = 10.0) -> None:
        proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        """Cancel the cluster's jobs, end the job steps and the daemons this instance started (by PID), remove the
        folder."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            ids = self.cli("squeue", "-h", "-o", "%i", check=False).stdout.split()
            if ids:
                self.cli("scancel", "--full", "--quiet", *ids, check=False)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.cli("squeue", "-h", "-o", "%i", check=False).stdout.strip():
                time.sleep(0.1)
        steps = self._step_pids() if "slurmd" in self._procs else []
        for name in ("slurmrestd", "slurmd", "slurmctld", "munged"):
            self._end(name)
        for pid in steps:  # a step left over (e.g. slurmctld was already down): end it by PID
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def _step_pids(self) -> list[int]:
        """PIDs of this node's job steps (`scontrol listpids` asks slurmd), for a clean stop."""
        out = self.cli("scontrol", "listpids", check=False).stdout.splitlines()[1:]
        return [int(line.split()[0]) for line in out if line.split() and line.split()[0].isdigit()]

    def workdir(self, user: str) -> Path:
        """A jobs folder owned by `user` (root for sbatch jobs of this process, `nobody` for slurmrestd's)."""
        d = self.jobs_dir / user
        d.mkdir(exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        return d
