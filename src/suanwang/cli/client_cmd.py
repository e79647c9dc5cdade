"""CLI: the client of a running `suanwang serve` - submit, jobs, job, cancel, logs, sites, tenant, token.

Every command talks to the REST API (`/api/v1`) with a bearer token, prints a table (or JSON with `--json`) and
turns every refusal, an unreachable server or an answer that is not the API's into a one-line error, exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from suanwang.cli.common import dump_json, emit, friendly_errors, safe_text
from suanwang.errors import SuanwangError
from suanwang.safeio import MAX_JOB_FILE_BYTES, load_json_text, read_text
from suanwang.workload.validate import JobFieldError, check_values

Server = Annotated[str, typer.Option("--server", envvar="SUANWANG_SERVER", help="service URL")]
TokenOpt = Annotated[str, typer.Option("--token", envvar="SUANWANG_TOKEN", help="API token")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]

# the job options of `submit` and `quote`
OriginOpt = Annotated[str | None, typer.Option(help="city the users are in: 许昌, Xuchang or an adcode")]
CpuOpt = Annotated[int, typer.Option(help="CPU cores")]
GpuOpt = Annotated[int, typer.Option(help="GPU cards")]
MemOpt = Annotated[float, typer.Option(help="memory, GB")]
RuntimeOpt = Annotated[float, typer.Option(help="expected runtime, hours")]
InputOpt = Annotated[float, typer.Option(help="input data, GB")]
OutputOpt = Annotated[float, typer.Option(help="output data, GB")]
DeadlineOpt = Annotated[float | None, typer.Option(help="deadline, hours after submission")]
LatencyClassOpt = Annotated[str, typer.Option(help="realtime, interactive or batch")]
DataClassOpt = Annotated[str, typer.Option(help="public, internal, sensitive or core")]
LabelsOpt = Annotated[str | None, typer.Option(help="site labels the job needs, ';'-separated")]
JOB_COLUMNS = ["id", "tenant", "origin_label", "state", "site_id", "cpu_cores", "gpu_cards", "cost_cny", "carbon_kg"]
SITE_COLUMNS = ["id", "name_zh", "province_id", "status", "cpu_free", "cpu_cores", "gpu_free", "gpu_cards", "pue"]
TIMEOUT_S = 30.0
MAX_DETAIL_CHARS = 300  # a refusal is echoed on one line, at most this long


def _emit_one(row: dict, columns: list[str] | None, as_json: bool, title: str) -> None:
    """One object: the API's JSON object with --json, else a one-row table."""
    if as_json:
        sys.stdout.write(dump_json(row) + "\n")
    else:
        emit([row], columns, title=title)


class ServerError(SuanwangError):
    """The server refused a request, could not be reached, or answered with something that is not the API's."""


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 3] + "..."


def _detail(r: httpx.Response) -> str:
    """The server's explanation of a refusal: FastAPI's `detail` (a string, or a list of {loc, msg})."""
    try:
        detail = r.json().get("detail")
    except (ValueError, AttributeError):
        return _one_line(r.text) or r.reason_phrase
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        detail = "; ".join(parts)
    return _one_line(detail if detail is not None else r.text)


def call(method: str, server: str, token: str, path: str, *, headers: dict | None = None, **kwargs) -> Any:
    """One API call; a refusal, a connection failure or a non-JSON answer becomes a one-line ServerError."""
    url = server.rstrip("/") + path
    try:
        r = httpx.request(
            method,
            url,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            timeout=TIMEOUT_S,
            **kwargs,
        )
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        why = _one_line(str(e) or type(e).__name__)
        raise ServerError(f"cannot reach {server}: {why} - is `suanwang serve` running there (--server)?") from None
    if r.status_code >= 400:
        retry = r.headers.get("Retry-After")
        later = f" - the server asks to retry after {_one_line(retry)[:20]} s" if retry else ""
        raise ServerError(f"HTTP {r.status_code} from {server}: {_detail(r)}{later}")
    try:
        return r.json()
    except ValueError:
        raise ServerError(f"{server} did not answer with JSON - is --server a suanwang service?") from None


def _jobs_from_file(file: Path) -> list:
    """The job objects of a JSON file: one object, a list of them, or {"jobs": [...]}."""
    data = load_json_text(read_text(file, max_bytes=MAX_JOB_FILE_BYTES), str(file))
    jobs = data if isinstance(data, list) else data.get("jobs", [data]) if isinstance(data, dict) else None
    if not jobs or not isinstance(jobs, list):
        raise ServerError(f"{file}: expected a job object, a list of jobs or {{'jobs': [...]}} - see docs/service.md")
    return jobs


def job_body(
    origin, cpu, gpu, mem_gb, runtime_h, input_gb, output_gb, deadline_h, latency_class, data_class, labels,
    command=None,
) -> dict:  # fmt: skip
    """The job object of the `submit` / `quote` options (units as the options say; `labels` ';'-separated),
    checked by the API's own rules before anything is sent (a bad value: one line naming the option); unset
    fields are left out."""
    body = {
        "origin": origin,
        "cpu_cores": cpu,
        "gpu_cards": gpu,
        "mem_gb": mem_gb,
        "runtime_h": runtime_h,
        "input_gb": input_gb,
        "output_gb": output_gb,
        "deadline_h": deadline_h,
        "latency_class": latency_class,
        "data_class": data_class,
        "labels": [s.strip() for s in (labels or "").split(";") if s.strip()],
        "command": command,
    }
    try:
        check_values(body, relative_deadline=True)
    except JobFieldError as e:
        option = {"cpu_cores": "cpu", "gpu_cards": "gpu"}.get(e.field, e.field).replace("_", "-")
        raise ServerError(f"--{option}: {e.problem} - {e.fix}") from None
    return {k: v for k, v in body.items() if v is not None and v != []}


@friendly_errors
def submit(
    server: Server,
    token: TokenOpt,
    file: Annotated[Path | None, typer.Option(help="JSON file: one job object or a list of them")] = None,
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
    command: Annotated[str | None, typer.Option(help="shell command (server must allow commands)")] = None,
    tenant: Annotated[str | None, typer.Option(help="admin tokens: the tenant the jobs belong to")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency-Key: resending with it never duplicates")] = None,
    as_json: AsJson = False,
) -> None:
    """Submit jobs from a JSON file or from options."""
    if file is None and origin is None:
        raise ServerError("give --file jobs.json or --origin CITY")
    if file is not None:
        jobs = _jobs_from_file(file)
    else:
        body = job_body(origin, cpu, gpu, mem_gb, runtime_h, input_gb, output_gb, deadline_h, latency_class,
                        data_class, labels, command=command)  # fmt: skip
        jobs = [body]
    if tenant is not None:
        jobs = [{**j, "tenant": tenant} if isinstance(j, dict) else j for j in jobs]
    headers = {"Idempotency-Key": key} if key else None
    out = call("POST", server, token, "/api/v1/jobs/batch", json={"jobs": jobs}, headers=headers)["jobs"]
    emit(out, JOB_COLUMNS, as_json=as_json, title="submitted")


@friendly_errors
def jobs(
    server: Server,
    token: TokenOpt,
    state: Annotated[str | None, typer.Option(help="only jobs in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many")] = 50,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first (your own; all of them for admin / operator tokens)."""
    params = {"limit": limit, **({"state": state} if state else {})}
    page = call("GET", server, token, "/api/v1/jobs", params=params)
    emit(page["items"], JOB_COLUMNS, as_json=as_json, title=f"jobs ({page['total']} in all)")


def _job_path(job_id: str, suffix: str = "") -> str:
    from urllib.parse import quote

    return f"/api/v1/jobs/{quote(job_id, safe='')}{suffix}"


@friendly_errors
def job(
    job_id: Annotated[str, typer.Argument(help="job id, e.g. job_0123...")],
    server: Server,
    token: TokenOpt,
    as_json: AsJson = False,
) -> None:
    """Show one job: its state, site, predicted cost (CNY) and carbon (kgCO2)."""
    row = call("GET", server, token, _job_path(job_id))
    _emit_one(row, JOB_COLUMNS + ["reason"], as_json, f"job {row['id']}")


@friendly_errors
def cancel(
    job_id: Annotated[str, typer.Argument(help="job id")],
    server: Server,
    token: TokenOpt,
    as_json: AsJson = False,
) -> None:
    """Cancel a job that has not ended."""
    row = call("POST", server, token, _job_path(job_id, "/cancel"))
    _emit_one(row, JOB_COLUMNS, as_json, "cancelled")


@friendly_errors
def logs(
    job_id: Annotated[str, typer.Argument(help="job id")],
    server: Server,
    token: TokenOpt,
    as_json: AsJson = False,
) -> None:
    """Print a job's captured output (empty before it starts)."""
    out = call("GET", server, token, _job_path(job_id, "/logs"))
    if as_json:
        _emit_one(out, None, True, "logs")
    else:
        sys.stdout.write(safe_text(str(out.get("logs", ""))))  # a job's output cannot drive this terminal


@friendly_errors
def sites(server: Server, token: TokenOpt, as_json: AsJson = False) -> None:
    """List sites with their free capacity and status."""
    emit(call("GET", server, token, "/api/v1/sites"), SITE_COLUMNS, as_json=as_json, title="sites")


tenant_app = typer.Typer(no_args_is_help=True, help="Tenants of a running service (admin token).")
token_app = typer.Typer(no_args_is_help=True, help="API tokens of a running service (admin token).")


@tenant_app.command("list")
@friendly_errors
def tenant_list(server: Server, token: TokenOpt, as_json: AsJson = False) -> None:
    """List every tenant."""
    emit(call("GET", server, token, "/api/v1/tenants"), ["id", "name"], as_json=as_json, title="tenants")


@tenant_app.command("create")
@friendly_errors
def tenant_create(
    name: Annotated[str, typer.Argument(help="tenant name, e.g. acme")],
    server: Server,
    token: TokenOpt,
    as_json: AsJson = False,
) -> None:
    """Create a tenant."""
    row = call("POST", server, token, "/api/v1/tenants", json={"name": name})
    _emit_one(row, ["id", "name"], as_json, "tenant created")


@token_app.command("create")
@friendly_errors
def token_create(
    server: Server,
    token: TokenOpt,
    role: Annotated[str, typer.Option(help="admin, operator or tenant")] = "tenant",
    tenant: Annotated[str | None, typer.Option(help="the tenant a tenant token acts for")] = None,
    as_json: AsJson = False,
) -> None:
    """Create an API token; it is shown once (the server keeps only a salted hash)."""
    body = {"role": role, **({"tenant": tenant} if tenant is not None else {})}
    row = call("POST", server, token, "/api/v1/tokens", json=body)
    if as_json:
        _emit_one(row, None, True, "token")
    else:
        sys.stdout.write(safe_text(str(row["token"])) + "\n")


def register(app) -> None:
    """Add the client commands to the root app."""
    for name, fn in (("submit", submit), ("jobs", jobs), ("job", job), ("cancel", cancel), ("logs", logs)):
        app.command(name)(fn)
    app.command("sites")(sites)
    app.add_typer(tenant_app, name="tenant")
    app.add_typer(token_app, name="token")
