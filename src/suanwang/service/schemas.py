"""Request bodies of the REST API (pydantic). Bounds keep every value storable and finite; they are not facts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from suanwang.workload.job import DataClass, LatencyClass

INT32_MAX = 2**31 - 1  # the widest integer every supported database column holds
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False, le=1e12)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TenantIn(Strict):
    name: Name


class TokenIn(Strict):
    role: Literal["admin", "operator", "tenant"]
    tenant: Name | None = Field(None, description="required for role tenant")


class JobIn(Strict):
    """One job. `origin` is a city (许昌, Xuchang) or its adcode; `deadline_h` is hours after submission."""

    origin: Annotated[str, Field(min_length=1, max_length=100)]
    cpu_cores: Count = 1
    gpu_cards: Count = 0
    mem_gb: Amount = 0.0
    runtime_h: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 1.0
    input_gb: Amount = 0.0
    output_gb: Amount = 0.0
    data_province: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    latency_class: LatencyClass = LatencyClass.BATCH
    max_latency_ms: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    deadline_h: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    data_class: DataClass = DataClass.PUBLIC
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    command: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None
    tenant: Name | None = Field(None, description="admin only: submit on behalf of this tenant")


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
    labels: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=32)] = []
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
    labels: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=32)] | None = None
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
    message: Annotated[str, Field(max_length=2000)] = ""


class HeartbeatIn(Strict):
    """An agent's heartbeat: the engine it drives and the capacity read from it (None: the engine cannot tell)."""

    engine: Engine
    capacity: CapacityIn | None = None


class ClaimIn(Strict):
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


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
