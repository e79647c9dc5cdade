"""A real single-node Ray cluster for the engine tests: `ray start --head --block` in a process group of its own,
on free ports outside Ray's worker range (10002-19999), HOME and RAY_TMPDIR in a short temporary folder (Ray's
socket paths must stay under 107 bytes), token authentication off on loopback (RAY_AUTH_MODE=disabled). Stopped
by signalling that process group only: nothing else on the machine is touched."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

WORKER_PORTS = range(10002, 20000)  # Ray's default worker port range: our fixed ports stay out of it
START_TIMEOUT_S = 90.0


def free_port() -> int:
    """A free TCP port on 127.0.0.1 outside Ray's worker range."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in WORKER_PORTS:
            return port


class RayCluster:
    """One head node with `num_cpus` CPUs and no GPUs. `address` is the dashboard URL (the Jobs API)."""

    def __init__(self, num_cpus: int = 4):
        self.num_cpus = num_cpus
        self.root = Path(tempfile.mkdtemp(prefix="swray"))
        self.ports = {
            name: free_port()
            for name in (
                "port",
                "dashboard",
                "node_manager",
                "object_manager",
                "agent_listen",
                "agent_grpc",
                "metrics",
                "runtime_env",
                "client",
            )
        }
        self.address = f"http://127.0.0.1:{self.ports['dashboard']}"
        self.proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment the head (and clients of it) run in."""
        return dict(
            os.environ,
            HOME=str(self.root),
            RAY_TMPDIR=str(self.root / "t"),
            RAY_AUTH_MODE="disabled",
            RAY_USAGE_STATS_ENABLED="0",
        )

    def start(self) -> RayCluster:
        """Start the head and wait until the Jobs API and the cluster status answer."""
        (self.root / "t").mkdir(exist_ok=True)
        ray = str(Path(sys.executable).with_name("ray"))
        p = self.ports
        cmd = [
            ray,
            "start",
            "--head",
            "--block",
            "--disable-usage-stats",
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            f"--port={p['port']}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={p['dashboard']}",
            f"--node-manager-port={p['node_manager']}",
            f"--object-manager-port={p['object_manager']}",
            f"--dashboard-agent-listen-port={p['agent_listen']}",
            f"--dashboard-agent-grpc-port={p['agent_grpc']}",
            f"--metrics-export-port={p['metrics']}",
            f"--runtime-env-agent-port={p['runtime_env']}",
            f"--ray-client-server-port={p['client']}",
            f"--temp-dir={self.root / 't'}",
        ]
        log = open(self.root / "head.log", "wb")  # noqa: SIM115 - kept open for the head's lifetime
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited {self.proc.returncode}: {self.log_tail()}")
            try:
                r = httpx.get(f"{self.address}/api/cluster_status", timeout=2)
                usage = r.json()["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
                if r.status_code == 200 and usage.get("CPU", [0, 0])[1] >= self.num_cpus:
                    httpx.get(f"{self.address}/api/version", timeout=2).raise_for_status()
                    return self
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the Ray head did not answer within {START_TIMEOUT_S:g} s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.root / "head.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def _strays(self) -> list[int]:
        """Processes of this cluster that left its process group (Ray workers call setsid): their command lines
        name this cluster's own temporary folder, which nothing else on the machine uses."""
        mine = str(self.root).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if mine in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def stop(self) -> None:
        """Stop the head: SIGTERM to its process group (the `ray start --block` monitor stops its processes), then
        SIGKILL whatever of that group is left, and this cluster's workers that left the group."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.5)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc = None
        for pid in self._strays():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """Stop the head and delete its folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
