"""CLI: `suanwang agent` runs a site agent next to the site's engine (Slurm, Ray, or local for trials)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated

import httpx
import typer

from suanwang.cli.common import err_console, friendly_errors
from suanwang.errors import SuanwangError


class AgentSetupError(SuanwangError):
    """The agent cannot start: a bad token file or engine settings."""


@friendly_errors
def agent(
    service: Annotated[str, typer.Option("--service", envvar="SUANWANG_SERVER", help="the service's URL")],
    site: Annotated[str, typer.Option("--site", help="the site id this agent runs for")],
    token_file: Annotated[
        Path, typer.Option("--token-file", help="file holding the site token (POST /api/v1/sites/ID/tokens)")
    ],
    interval_s: Annotated[float, typer.Option(min=0.05, max=60, help="seconds between passes")] = 1.0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="jobs claimed per pass")] = 100,
    submit_threads: Annotated[int, typer.Option(min=1, max=64, help="jobs submitted to the engine at once")] = 4,
    sweep_every_s: Annotated[
        float, typer.Option(min=0, max=86400, help="seconds between orphan sweeps of the engine (0: none)")
    ] = 60.0,
) -> None:
    """Run the agent of one site: heartbeat with the engine's capacity, run the site's placed jobs, report."""
    from suanwang.agent import Agent, AgentClient
    from suanwang.service.executors.factory import make_executor

    token = token_file.read_text(encoding="utf-8").strip()
    if not token:
        raise AgentSetupError(f"{token_file}: empty - write the site token into it")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    client = AgentClient(service, site, token)
    try:
        cfg = client.config()
    except httpx.HTTPError as e:
        raise AgentSetupError(f"cannot reach {service}: {e} - is `suanwang serve` running there?") from None
    settings = dict(cfg["engine_settings"])
    if cfg["engine"] == "local":
        settings.setdefault("allow_commands", cfg["allow_commands"])
    try:
        executor = make_executor(cfg["engine"], settings)
    except (ValueError, ImportError) as e:
        raise AgentSetupError(f"site {site}: {e}") from None
    interval_s = min(interval_s, cfg["heartbeat_timeout_s"] / 3)
    owner = str(cfg.get("engine_owner", ""))
    runner = Agent(client, executor, cfg["engine"], interval_s, limit, submit_threads, owner, sweep_every_s)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    err_console.print(f"agent of site {site} ({cfg['engine']}) -> {service}", highlight=False)
    try:
        runner.run(heartbeat_every_s=cfg["heartbeat_timeout_s"] / 5)
    except KeyboardInterrupt:
        runner.stop()


def register(app) -> None:
    """Add `agent` to the root app."""
    app.command("agent")(agent)
