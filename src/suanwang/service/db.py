"""The service's tables (SQLAlchemy 2 ORM) and the engine: SQLite by default, PostgreSQL by URL.

Times are naive UTC datetimes. Money in CNY, energy in kWh, carbon in kgCO2, latency in ms.
The schema itself is created by the Alembic migrations in `migrations/`, never by `create_all`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from suanwang.workload.job import JOB_FIELDS


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (what every timestamp column holds)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(t: datetime | None) -> str | None:
    """A stored naive-UTC datetime as ISO 8601 with a Z suffix."""
    return None if t is None else t.isoformat(timespec="milliseconds") + "Z"


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    """An API token, stored as a salted SHA-256; `lookup` is an unsalted digest prefix used only to find the row."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    lookup: Mapped[str] = mapped_column(sa.String(32), index=True)
    salt: Mapped[str] = mapped_column(sa.String(64))
    digest: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[str] = mapped_column(sa.String(16))
    tenant_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"))
    site_id: Mapped[str | None] = mapped_column(sa.String(64))  # site tokens: the one site they act for
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]  # set: the token no longer authenticates (the row stays, for the audit)


class SiteRow(Base):
    """A site jobs can run on; seeded from the atlas, or registered through the API."""

    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(32))
    province_id: Mapped[str] = mapped_column(sa.String(32))
    lat: Mapped[float]
    lon: Mapped[float]
    pue: Mapped[float]
    green_share: Mapped[float]
    cpu_cores: Mapped[int] = mapped_column(sa.BigInteger)
    gpu_cards: Mapped[int] = mapped_column(sa.BigInteger)
    price_cny_per_kwh: Mapped[float]
    carbon_kg_per_kwh: Mapped[float]
    role: Mapped[str] = mapped_column(sa.String(16), default="east")
    hub_id: Mapped[str] = mapped_column(sa.String(32), default="")
    labels: Mapped[list] = mapped_column(sa.JSON, default=list)
    executor: Mapped[str] = mapped_column(sa.String(32), default="local")  # the engine: local, slurm or ray
    engine_settings: Mapped[dict | None] = mapped_column(sa.JSON)  # how the agent reaches the engine (operator's)
    allow_commands: Mapped[bool] = mapped_column(default=False)  # agent sites: may tenants' commands run here
    engine_cpu_total: Mapped[int | None] = mapped_column(sa.BigInteger)  # capacity the agent read from the engine
    engine_cpu_free: Mapped[int | None] = mapped_column(sa.BigInteger)
    engine_gpu_total: Mapped[int | None] = mapped_column(sa.BigInteger)
    engine_gpu_free: Mapped[int | None] = mapped_column(sa.BigInteger)
    engine_message: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(8), default="up")
    monitored: Mapped[bool] = mapped_column(default=False)
    last_heartbeat: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# The Job fields a job row holds in columns of the same name: all but the tenant (tenant_id). The migrations make
# the columns; tests/test_job_fields.py checks the migrated table and JobRow have each.
JOB_COLUMNS = tuple(f for f in JOB_FIELDS if f != "tenant")


class JobRow(Base):
    """A submitted job, its state, and (once placed) its predicted cost, energy, carbon and explanation."""

    __tablename__ = "jobs"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_key"),)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))  # sha256 of the request the key came with
    origin: Mapped[str] = mapped_column(sa.String(12))
    origin_label: Mapped[str] = mapped_column(sa.String(100))
    origin_province: Mapped[str] = mapped_column(sa.String(32))
    cpu_cores: Mapped[int] = mapped_column(sa.BigInteger)
    gpu_cards: Mapped[int] = mapped_column(sa.BigInteger)
    mem_gb: Mapped[float]
    runtime_h: Mapped[float]
    input_gb: Mapped[float]
    output_gb: Mapped[float]
    data_province: Mapped[str] = mapped_column(sa.String(32))
    latency_class: Mapped[str] = mapped_column(sa.String(16))
    max_latency_ms: Mapped[float | None]
    deadline_h: Mapped[float | None]
    data_class: Mapped[str] = mapped_column(sa.String(16))
    priority: Mapped[int] = mapped_column(default=0)
    command: Mapped[str | None] = mapped_column(sa.Text)
    labels: Mapped[list] = mapped_column(sa.JSON, default=list)  # site labels the job needs (migration 0003)
    submit_h: Mapped[float]
    state: Mapped[str] = mapped_column(sa.String(16), index=True, default="queued")
    site_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    policy: Mapped[str | None] = mapped_column(sa.String(32))
    cost_cny: Mapped[float | None]
    energy_kwh: Mapped[float | None]
    carbon_kg: Mapped[float | None]
    latency_ms: Mapped[float | None]
    transfer_h: Mapped[float | None]
    verdicts: Mapped[dict | list | None] = mapped_column(sa.JSON)  # the placement's explanation (columns)
    executor_ref: Mapped[str | None] = mapped_column(sa.String(200))
    exit_code: Mapped[int | None]
    attempts: Mapped[int] = mapped_column(default=0)
    avoid_site: Mapped[str | None] = mapped_column(sa.String(64))  # a retry never goes back to the site that failed
    claimed_at: Mapped[datetime | None]  # when a site agent first took the placed job
    cancel_confirmed_at: Mapped[datetime | None]  # when the agent confirmed the engine stopped a cancelled job
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobLog(Base):
    """The captured output of a job run by a site agent's engine (the agent uploads it; the last bytes kept)."""

    __tablename__ = "job_logs"
    job_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    text: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """An append-only record of one state change: who did what to which object."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(120))
    action: Mapped[str] = mapped_column(sa.String(32))
    object: Mapped[str] = mapped_column(sa.String(120))
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)


def dialect_name(url: str) -> str:
    """'sqlite' or 'postgresql' for a database URL."""
    return sa.make_url(url).get_backend_name()


SQLITE_BUSY_S = 30  # how long a SQLite statement waits for another writer's lock


def make_engine(url: str) -> sa.Engine:
    """An engine for `url`. SQLite runs in WAL mode, fsyncs every commit, and takes the write lock at BEGIN."""
    if dialect_name(url) != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # one writer at a time; no lock-upgrade deadlocks

    return engine


def make_sessionmaker(engine: sa.Engine) -> sessionmaker:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def pg_unnest(table: sa.Table, names: list[str] | tuple[str, ...]) -> str:
    """`unnest(%s::T1[], %s::T2[], ...) AS u(name1, name2, ...)` for PostgreSQL: one array parameter per column,
    typed like the column (JSON columns travel as text and are cast where they are used)."""
    pg = sa.dialects.postgresql.dialect()
    types = ["TEXT" if isinstance(table.c[n].type, sa.JSON) else table.c[n].type.compile(dialect=pg) for n in names]
    arrays = ", ".join(f"%b::{t}[]" for t in types)  # binary: no per-element escaping of text
    return f"unnest({arrays}) AS u({', '.join(names)})"


def fault_reason(exc: BaseException) -> str:
    """One line saying what the database answered (the driver's own message: no SQL, no parameters)."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]


PROBE_TIMEOUT_MS = 2000  # how long the health probe waits for the write lock / a statement
FAULT_MEMORY_S = 30.0  # a failed write counts against health this long, unless a write succeeds first


class WriteHealth:
    """Whether this replica's database takes writes: a probe (a write rolled back) plus the last write that failed.

    A probe alone misses a full disk (a small write may still fit where a batch does not), so a failed write of a
    submission or of a loop step is remembered for `FAULT_MEMORY_S` seconds, or until a write succeeds."""

    def __init__(self):
        self._lock = threading.Lock()
        self._fault: tuple[float, str] | None = None

    def failed(self, reason: str) -> None:
        """Record that a write failed for `reason` (one line)."""
        with self._lock:
            self._fault = (time.monotonic(), reason)

    def succeeded(self) -> None:
        """Record that a write committed."""
        if self._fault is not None:
            with self._lock:
                self._fault = None

    def check(self, engine: sa.Engine) -> str | None:
        """None when the database takes a write now, else why not (one line)."""
        try:
            write_probe(engine)
        except Exception as e:  # any failure to write is the answer, not an error of the probe
            return fault_reason(e)
        with self._lock:
            fault = self._fault
        if fault is not None and time.monotonic() - fault[0] < FAULT_MEMORY_S:
            return f"a write failed {time.monotonic() - fault[0]:.0f} s ago: {fault[1]}"
        return None


def write_probe(engine: sa.Engine) -> None:
    """Insert an audit row and roll it back, waiting at most PROBE_TIMEOUT_MS for locks; raises what the database
    answered when it cannot be written (read-only, unreachable, restarting, locked)."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":  # autocommit driver connection: we issue BEGIN ourselves
            cur.execute(f"PRAGMA busy_timeout = {PROBE_TIMEOUT_MS}")
            try:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute(
                    "INSERT INTO audit (at, actor, action, object, detail) VALUES (?, 'system:healthz', 'probe', "
                    "'-', '{}')",
                    (utcnow().isoformat(" "),),
                )
            finally:
                if raw.driver_connection.in_transaction:
                    cur.execute("ROLLBACK")
                cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_S * 1000}")
        else:
            try:
                cur.execute(f"SET LOCAL lock_timeout = {PROBE_TIMEOUT_MS}")
                cur.execute(f"SET LOCAL statement_timeout = {PROBE_TIMEOUT_MS}")
                cur.execute(
                    "INSERT INTO audit (at, actor, action, object, detail) VALUES (%s, 'system:healthz', 'probe', "
                    "'-', '{}')",
                    (utcnow(),),
                )
            finally:
                raw.rollback()
        cur.close()
    finally:
        raw.close()
