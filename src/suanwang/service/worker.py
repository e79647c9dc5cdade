"""A replica that runs only the scheduling loop, no HTTP: the loop in a process of its own never competes with the
API for one interpreter lock, so a burst of placements does not stretch request latency.

    SUANWANG_DB=postgresql+psycopg://user@host/db python -m suanwang.service.worker

Pair it with API workers started with SUANWANG_LOOP=0. Stops on SIGTERM or SIGINT (finishing its tick).
"""

from __future__ import annotations

import signal
import threading

from suanwang.service.config import ServiceConfig
from suanwang.service.lifeline import die_with_parent
from suanwang.service.runtime import Service


def run_loop(cfg: ServiceConfig, stop: threading.Event) -> None:
    """Run the scheduling loop of a replica configured by `cfg` until `stop` is set."""
    svc = Service(cfg)
    svc.loop.start()
    try:
        stop.wait()
    finally:
        svc.close()


def main() -> None:
    """The loop-only replica, configured by SUANWANG_* variables (SUANWANG_LOOP is ignored: the loop always runs)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    die_with_parent()  # SIGTERM (a clean stop) when the `suanwang serve` that started it dies
    run_loop(ServiceConfig.from_env(loop=True), stop)


if __name__ == "__main__":
    main()
