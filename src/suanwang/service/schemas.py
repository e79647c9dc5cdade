"""Request bodies of the REST API (pydantic). Bounds keep every value storable and finite; they are not facts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from suanwang.workload.job import JOB_FIELDS, RESOLVED_FIELDS, DataClass, LatencyClass
from suanwang.workload.validate import (
    BOUNDS,
    INT32_MAX,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    MAX_TEXT_CHARS,
    JobFieldError,
    check_values,
)

# The Job fields a submission gives (JobIn's fields): all but id and submit_h, which the service sets, and the
# resolved ones.
SUBMITTED = tuple(f for f in JOB_FIELDS if f not in ("id", "submit_h", *RESOLVED_FIELDS))
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]  # site capacity
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False, le=1e12)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]  # no control chars
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantIn(Strict):
    name: Name


class TokenIn(Strict):
    role: Literal["admin", "operator", "tenant"]
    tenant: Name | None = Field(None, description="required for role tenant")


def _not_bool(value):
    if isinstance(value, bool):  # JSON true is not 1 core (job files refuse it too)
        raise ValueError("is true / false, not a number - give a number")
    return value


def _num(name: str, kind: type = float):
    """The pydantic type of a job's numeric field, with the bounds of workload.validate.BOUNDS."""
    return Annotated[kind, BeforeValidator(_not_bool), Field(**BOUNDS[name].field_kwargs())]


def _text(name: str):
    return Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS[name])]


Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS, pattern=r"^[^\x00-\x1f\x7f-\x9f;]+$")]


class JobIn(Strict):
    """One job. `origin` is a city (许昌, Xuchang) or its adcode; `deadline_h` is hours after submission.

    Checked by workload.validate, the rules job files follow too: some cores or cards, a deadline no earlier
    than the runtime, finite values within bounds, no control characters; a refusal is a 422 naming the field."""

    origin: _text("origin")
    cpu_cores: _num("cpu_cores", int) = 1
    gpu_cards: _num("gpu_cards", int) = 0
    mem_gb: _num("mem_gb") = 0.0
    runtime_h: _num("runtime_h") = 1.0
    input_gb: _num("input_gb") = 0.0
    output_gb: _num("output_gb") = 0.0
    data_province: _text("data_province") | None = None
    latency_class: LatencyClass = LatencyClass.BATCH
    max_latency_ms: _num("max_latency_ms") | None = None
    deadline_h: _num("deadline_h") | None = None
    data_class: DataClass = DataClass.PUBLIC
    priority: _num("priority", int) = 0
    command: _text("command") | None = None
    labels: Annotated[list[Label], Field(max_length=MAX_LABELS, description="site labels the job needs")] = []
    tenant: Name | None = Field(None, description="admin only: submit on behalf of this tenant")

    @model_validator(mode="after")
    def _shared_rules(self) -> JobIn:
        try:
            check_values(self.__dict__, relative_deadline=True, bounded=True)  # the fields carry BOUNDS already
        except JobFieldError as e:
            error = PydanticCustomError("job_value", "{problem} - {fix}", {"problem": e.problem, "fix": e.fix})
            details = InitErrorDetails(type=error, loc=(e.field,), input=getattr(self, e.field, None))
            raise ValidationError.from_exception_data("JobIn", [details]) from None
        return self


class JobBatchIn(Strict):
    jobs: Annotated[list[JobIn], Field(min_length=1, max_length=1000)]


Engine = Literal["local", "slurm", "ray"]
SettingKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SettingValue = Annotated[str, Field(max_length=1000)] | bool | Annotated[int, Field(ge=-INT32_MAX, le=INT32_MAX)]
EngineSettings = Annotated[
    dict[SettingKey, SettingValue],
    Field(
        max_length=32,
        description="how the site's agent reaches its engine, e.g. ray: {address}; slurm: {rest_url, partition, "
        "account, workdir} (the operator's choice; tenants never set these)",
    ),
]


class SiteIn(Strict):
    """A site to register. Price and carbon default to the province's; capacity in cores and cards."""

    id: Ident
    name_zh: Name
    name_en: Name
    province_id: Annotated[str, Field(min_length=1, max_length=100)]
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    kind: Annotated[str, Field(min_length=1, max_length=32)] = "custom"
    pue: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)]
    green_share: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    cpu_cores: Count
    gpu_cards: Count = 0
    price_cny_per_kwh: Annotated[float, Field(ge=0, le=1e3, allow_inf_nan=False)] | None = None
    labels: Annotated[list[Label], Field(max_length=MAX_LABELS)] = []
    engine: Engine = Field("local", description="local: run by the service itself; slurm / ray: by a site agent")
    engine_settings: EngineSettings = {}
    allow_commands: bool = Field(False, description="agent sites: run tenants' shell commands here")
    monitored: bool = True


class SitePatch(Strict):
    """Fields an operator may change on a site; absent fields stay as they are."""

    cpu_cores: Count | None = None
    gpu_cards: Count | None = None
    price_cny_per_kwh: Annotated[float, Field(ge=0, le=1e3, allow_inf_nan=False)] | None = None
    green_share: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    pue: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)] | None = None
    labels: Annotated[list[Label], Field(max_length=MAX_LABELS)] | None = None
    status: Literal["up", "down"] | None = None
    monitored: bool | None = None
    engine: Engine | None = None
    engine_settings: EngineSettings | None = None
    allow_commands: bool | None = None


class CapacityIn(Strict):
    """Room the agent read from its engine (cores and cards), and whether the engine answered at all."""

    cpu_total: Count
    cpu_free: Count
    gpu_total: Count = 0
    gpu_free: Count = 0
    up: bool = True
    reachable: bool = True  # False: the engine does not answer at all (not merely closed to new jobs)
    message: Annotated[str, Field(max_length=2000)] = ""


class HeartbeatIn(Strict):
    """An agent's heartbeat: the engine it drives and the capacity read from it (None: the engine cannot tell)."""

    engine: Engine
    capacity: CapacityIn | None = None


class EngineJobIn(Strict):
    """A job an agent found in its engine carrying its site's tag: the platform's job id and the engine's reference;
    `why` (in `swept`) is what the service said when the agent cancelled it."""

    job_id: Annotated[str, Field(min_length=1, max_length=40)]
    ref: Annotated[str, Field(min_length=1, max_length=180)]
    why: Annotated[str, Field(max_length=500)] = ""


class ClaimIn(Strict):
    """A claim; with `engine_jobs` (the live jobs of this site's tag in the engine) the answer's `orphans` lists
    those the agent must cancel; `swept` reports the orphans it cancelled since (audited)."""

    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    engine_jobs: Annotated[list[EngineJobIn], Field(max_length=100_000)] | None = None
    swept: Annotated[list[EngineJobIn], Field(max_length=100_000)] = []


class ReportIn(Strict):
    """What the engine says about one job. lost: the engine lost it (retry elsewhere), not the job's own failure."""

    state: Literal["running", "done", "failed", "cancelled"]
    ref: Annotated[str, Field(min_length=1, max_length=180)] | None = None
    exit_code: Annotated[int, Field(ge=-INT32_MAX, le=INT32_MAX)] | None = None
    reason: Annotated[str, Field(max_length=2000)] = ""
    lost: bool = False
    logs: Annotated[str, Field(max_length=262_144)] | None = None


class ReportItem(ReportIn):
    job_id: Annotated[str, Field(min_length=1, max_length=40)]


class ReportManyIn(Strict):
    """Several reports in one request (one transaction): what an agent learnt in one pass."""

    reports: Annotated[list[ReportItem], Field(min_length=1, max_length=1000)]
