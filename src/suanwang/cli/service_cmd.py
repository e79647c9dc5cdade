"""CLI: `suanwang serve` runs the platform; `submit`, `jobs`, `sites` talk to a running one over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer

from suanwang.cli.common import emit, friendly_errors
from suanwang.errors import SuanwangError

Server = Annotated[str, typer.Option("--server", envvar="SUANWANG_SERVER", help="service URL")]
TokenOpt = Annotated[str, typer.Option("--token", envvar="SUANWANG_TOKEN", help="API token")]
JOB_COLUMNS = ["id", "tenant", "origin_label", "state", "site_id", "cpu_cores", "gpu_cards", "cost_cny", "carbon_kg"]
SITE_COLUMNS = ["id", "name_zh", "province_id", "status", "cpu_free", "cpu_cores", "gpu_free", "gpu_cards", "pue"]


class ServerError(SuanwangError):
    """The server refused a request or could not be reached."""


def call(method: str, server: str, token: str, path: str, **kwargs) -> dict | list:
    """One API call; a refusal or a connection failure becomes a ServerError with the server's explanation."""
    try:
        r = httpx.request(
            method, server.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
        )
    except httpx.HTTPError as e:
        raise ServerError(f"cannot reach {server}: {e} - is `suanwang serve` running there?") from None
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text
        raise ServerError(f"HTTP {r.status_code}: {detail}")
    return r.json()


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

    cfg = ServiceConfig.from_env(
        db_url=db,
        admin_token=admin_token,
        allow_commands=allow_commands or None,
        heartbeat_timeout_s=heartbeat_timeout_s,
        workdir=workdir,
        policy=policy,
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


def _job_args(origin, cpu, gpu, mem_gb, runtime_h, input_gb, output_gb, latency_class, data_class, command) -> dict:
    body = {
        "origin": origin,
        "cpu_cores": cpu,
        "gpu_cards": gpu,
        "mem_gb": mem_gb,
        "runtime_h": runtime_h,
        "input_gb": input_gb,
        "output_gb": output_gb,
        "latency_class": latency_class,
        "data_class": data_class,
    }
    if command:
        body["command"] = command
    return body


@friendly_errors
def submit(
    server: Server,
    token: TokenOpt,
    file: Annotated[Path | None, typer.Option(help="JSON file: one job object or a list of them")] = None,
    origin: Annotated[str | None, typer.Option(help="city the users are in: 许昌, Xuchang or an adcode")] = None,
    cpu: Annotated[int, typer.Option(help="CPU cores")] = 1,
    gpu: Annotated[int, typer.Option(help="GPU cards")] = 0,
    mem_gb: Annotated[float, typer.Option(help="memory, GB")] = 0.0,
    runtime_h: Annotated[float, typer.Option(help="expected runtime, hours")] = 1.0,
    input_gb: Annotated[float, typer.Option(help="input data, GB")] = 0.0,
    output_gb: Annotated[float, typer.Option(help="output data, GB")] = 0.0,
    latency_class: Annotated[str, typer.Option(help="realtime, interactive or batch")] = "batch",
    data_class: Annotated[str, typer.Option(help="public, internal, sensitive or core")] = "public",
    command: Annotated[str | None, typer.Option(help="shell command (server must allow commands)")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency-Key: resending with it never duplicates")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Submit jobs from a JSON file or from options."""
    if file is None and origin is None:
        raise ServerError("give --file jobs.json or --origin CITY")
    if file is not None:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ServerError(f"{file}: not valid JSON ({e.msg} at line {e.lineno})") from None
        jobs = data if isinstance(data, list) else data.get("jobs", [data]) if isinstance(data, dict) else None
        if not jobs:
            raise ServerError(f"{file}: expected a job object, a list of jobs or {{'jobs': [...]}}")
    else:
        jobs = [_job_args(origin, cpu, gpu, mem_gb, runtime_h, input_gb, output_gb, latency_class, data_class, command)]
    headers = {"Idempotency-Key": key} if key else {}
    out = call("POST", server, token, "/api/v1/jobs/batch", json={"jobs": jobs}, headers=headers)["jobs"]
    emit(out, JOB_COLUMNS, as_json=as_json, title="submitted")


@friendly_errors
def jobs(
    server: Server,
    token: TokenOpt,
    state: Annotated[str | None, typer.Option(help="only jobs in this state")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List jobs (your own; all of them for admin / operator tokens)."""
    params = {"limit": limit, **({"state": state} if state else {})}
    page = call("GET", server, token, "/api/v1/jobs", params=params)
    emit(page["items"], JOB_COLUMNS, as_json=as_json, title=f"jobs ({page['total']} in all)")


@friendly_errors
def sites(
    server: Server,
    token: TokenOpt,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List sites with their free capacity and status."""
    emit(call("GET", server, token, "/api/v1/sites"), SITE_COLUMNS, as_json=as_json, title="sites")


def register(app) -> None:
    """Add the service commands to the root app."""
    app.command("serve")(serve)
    app.command("submit")(submit)
    app.command("jobs")(jobs)
    app.command("sites")(sites)
