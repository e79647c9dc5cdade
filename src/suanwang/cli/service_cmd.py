"""CLI: `suanwang serve` runs the platform (the commands that talk to it are in `client_cmd`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from suanwang.cli.common import friendly_errors


@friendly_errors
def serve(
    db: Annotated[
        str | None, typer.Option(help="database URL (default sqlite:///suanwang.db, env SUANWANG_DB)")
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    admin_token: Annotated[
        str | None, typer.Option(help="ensure this admin token exists (env SUANWANG_ADMIN_TOKEN)")
    ] = None,
    allow_commands: Annotated[bool, typer.Option("--allow-commands", help="run jobs' commands, sandboxed")] = False,
    heartbeat_timeout_s: Annotated[float | None, typer.Option(help="seconds before a silent site is down")] = None,
    workdir: Annotated[Path | None, typer.Option(help="folder for the local executor's job directories")] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="scheduling policy: online, a baseline (cheapest, ...) or batch-lp (plans batch jobs in windows)"
        ),
    ] = None,
    quotas: Annotated[
        Path | None,
        typer.Option(
            help="tenancy file (docs/tenancy.md): quotas and fair-share weights the service enforces; replaces the "
            "stored one (also settable with PUT /api/v1/quotas)"
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API worker processes; above 1 the scheduling loop runs in a process of its own "
            "(python -m suanwang.service.worker) and the workers take only HTTP",
        ),
    ] = 1,
    loop_process: Annotated[
        bool,
        typer.Option(
            "--loop-process",
            help="run the scheduling loop in a process of its own also with one worker (always with more)",
        ),
    ] = False,
) -> None:
    """Run the platform: REST API at /api/v1, OpenAPI docs at /docs, dashboard at /dashboard."""
    import uvicorn

    from suanwang.service import Service, ServiceConfig, create_app
    from suanwang.service.lifeline import parent_env

    document = None
    if quotas is not None:  # checked before anything starts: a bad file is one line, exit 2
        from suanwang.atlas import load_atlas
        from suanwang.service.tenancy import load_file

        document = load_file(quotas, load_atlas())

    cfg = ServiceConfig.from_env(
        db_url=db,
        admin_token=admin_token,
        allow_commands=allow_commands or None,
        heartbeat_timeout_s=heartbeat_timeout_s,
        workdir=workdir,
        policy=policy,
        quotas=document,
    )
    if workers == 1 and not loop_process:  # one process: the API and a scheduling-loop thread
        app = create_app(Service(cfg))
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    Service(cfg).close()  # migrate, seed and create the admin token once, before any worker starts
    # every child dies with this process, even when it is killed with SIGKILL (service/lifeline.py)
    env = dict(os.environ, **cfg.to_env(), **parent_env())
    loop = subprocess.Popen([sys.executable, "-m", "suanwang.service.worker"], env=env)
    os.environ.update(cfg.to_env(), **parent_env(), SUANWANG_LOOP="0")  # read by each worker's app_from_env
    # uvicorn re-raises the signal that stopped it once it has shut down: make SIGTERM end this process through
    # `finally` (as SIGINT does), so the loop process is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            "suanwang.service.asgi:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
        )
    finally:
        loop.terminate()
        try:
            loop.wait(timeout=30)
        except subprocess.TimeoutExpired:
            loop.kill()


def register(app) -> None:
    """Add `serve` to the root app (the client commands are in client_cmd)."""
    app.command("serve")(serve)
