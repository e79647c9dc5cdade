"""CLI: tenancy on a running `suanwang serve` - `quotas` (show, or `--set FILE` to replace), `usage`, `quote`.

The conventions of client_cmd: a bearer token and server URL (options or SUANWANG_TOKEN / SUANWANG_SERVER), a table
or the API's JSON with `--json`, and every refusal or unreachable server one line on stderr, exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from suanwang.cli.client_cmd import (
    AsJson,
    CpuOpt,
    DataClassOpt,
    DeadlineOpt,
    GpuOpt,
    InputOpt,
    LabelsOpt,
    LatencyClassOpt,
    MemOpt,
    OriginOpt,
    OutputOpt,
    RuntimeOpt,
    Server,
    ServerError,
    TokenOpt,
    call,
    job_body,
)
from suanwang.cli.common import dump_json, emit, friendly_errors
from suanwang.errors import PolicyError
from suanwang.safeio import load_yaml

RULE_COLUMNS = ["id", "tenant", "cores", "cards", "within", "outside", "description"]
USAGE_COLUMNS = ["tenant", "weight", "cores_in_use", "cards_in_use", "core_h_decayed", "card_h_decayed", "fair_share"]
USE_COLUMNS = ["tenant", "id", "rule", "cores_in_use", "cores", "cards_in_use", "cards"]
FEASIBLE_COLUMNS = ["site_id", "starts", "start_h", "cost_cny", "carbon_kg", "latency_ms", "transfer_h", "reason"]


def _print_json(value) -> None:
    sys.stdout.write(dump_json(value) + "\n")


@friendly_errors
def quotas(
    server: Server,
    token: TokenOpt,
    set_file: Annotated[
        Path | None,
        typer.Option("--set", help="replace the service's tenancy document by this tenancy file (admin / operator)"),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The quotas and fair-share weights the service enforces (a tenant sees its own), or replace them with --set."""
    if set_file is not None:
        raw = load_yaml(set_file, shown_as=set_file.name, error=PolicyError)
        document = json.loads(json.dumps(raw, default=str))  # dates and the like as text, as the server stores them
        out = call("PUT", server, token, "/api/v1/quotas", json=document)
    else:
        out = call("GET", server, token, "/api/v1/quotas")
    if as_json:
        _print_json(out)
        return
    doc = out.get("document")
    if doc is None:
        sys.stdout.write("no tenancy set - every tenant weighs 1 and has no quota (set one with --set FILE)\n")
        return
    rules = [dict(q, within=q.get("within"), outside=q.get("outside")) for q in doc.get("quotas") or []]
    weights = ", ".join(f"{k} {v}" for k, v in (doc.get("tenants") or {}).items()) or "-"
    meta = {"version": out.get("version"), "half-life h": doc.get("half_life_h", 24), "weights": weights}
    emit(rules, RULE_COLUMNS, title=f"tenancy {doc.get('name') or ''}".strip(), meta=meta)


@friendly_errors
def usage(server: Server, token: TokenOpt, as_json: AsJson = False) -> None:
    """Per tenant (a tenant: its own) the cores and cards in use, decayed usage, fair share and each quota's use."""
    out = call("GET", server, token, "/api/v1/usage")
    if as_json:
        _print_json(out)
        return
    emit(out["tenants"], USAGE_COLUMNS, title=f"usage at hour {out['at_h']:.2f}")
    uses = [dict(q, tenant=t["tenant"]) for t in out["tenants"] for q in t["quotas"]]
    if uses:
        emit(uses, USE_COLUMNS, title="quota use")


@friendly_errors
def quote(
    server: Server,
    token: TokenOpt,
    file: Annotated[Path | None, typer.Option(help="JSON file: one job object (as for submit)")] = None,
    origin: OriginOpt = None,
    cpu: CpuOpt = 1,
    gpu: GpuOpt = 0,
    mem_gb: MemOpt = 0.0,
    runtime_h: RuntimeOpt = 1.0,
    input_gb: InputOpt = 0.0,
    output_gb: OutputOpt = 0.0,
    deadline_h: DeadlineOpt = None,
    latency_class: LatencyClassOpt = "batch",
    data_class: DataClassOpt = "public",
    labels: LabelsOpt = None,
    tenant: Annotated[str | None, typer.Option(help="staff tokens: quote with this tenant's quotas")] = None,
    as_json: AsJson = False,
) -> None:
    """Where a job could run now, without submitting it: each feasible site's start, cost (CNY), carbon (kgCO2),
    latency (ms), and why the other sites are out."""
    if file is None and origin is None:
        raise ServerError("give --file job.json or --origin CITY")
    if file is not None:
        from suanwang.safeio import MAX_JOB_FILE_BYTES, load_json_text, read_text

        body = load_json_text(read_text(file, max_bytes=MAX_JOB_FILE_BYTES), str(file))
        if not isinstance(body, dict):
            raise ServerError(f"{file}: expected one job object - see docs/service.md")
    else:
        body = job_body(origin, cpu, gpu, mem_gb, runtime_h, input_gb, output_gb, deadline_h, latency_class,
                        data_class, labels)  # fmt: skip
    if tenant is not None:
        body["tenant"] = tenant
    out = call("POST", server, token, "/api/v1/quotes", json=body)
    if as_json:
        _print_json(out)
        return
    meta = {"would place at": out.get("site_id") or "-", "reason": out.get("reason", "")}
    emit(out["feasible"], FEASIBLE_COLUMNS, title=f"quote at hour {out['at_h']:.2f} ({out['policy']})", meta=meta)
    if out["out"]:
        emit(out["out"], ["site_id", "reason"], title="ruled out")


def register(app) -> None:
    """Add `quotas`, `usage` and `quote` to the root app."""
    app.command("quotas")(quotas)
    app.command("usage")(usage)
    app.command("quote")(quote)
