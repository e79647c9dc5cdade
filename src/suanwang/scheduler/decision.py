"""What a scheduling decision returns: the placement with its predicted cost and carbon, and why."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Placement:
    """Job -> site at start_h, with predictions: CNY, kWh, kgCO2, one-way ms, transfer hours."""

    job_id: str
    site_id: str
    site_index: int
    start_h: float
    cost_cny: float
    energy_kwh: float
    carbon_kg: float
    latency_ms: float
    transfer_h: float
    transfer_gb: float = 0.0

    @classmethod
    def of(
        cls,
        job_id: str,
        site_id: str,
        site_index: int,
        start_h: float,
        cost_cny: float,
        energy_kwh: float,
        carbon_kg: float,
        latency_ms: float,
        transfer_h: float,
        transfer_gb: float = 0.0,
    ) -> Placement:
        """The same as Placement(...), built in one step (the frozen constructor sets each field through
        object.__setattr__, a third of a cached decision's time)."""
        p = object.__new__(cls)
        object.__setattr__(
            p,
            "__dict__",
            {
                "job_id": job_id,
                "site_id": site_id,
                "site_index": site_index,
                "start_h": start_h,
                "cost_cny": cost_cny,
                "energy_kwh": energy_kwh,
                "carbon_kg": carbon_kg,
                "latency_ms": latency_ms,
                "transfer_h": transfer_h,
                "transfer_gb": transfer_gb,
            },
        )
        return p


@dataclass(frozen=True)
class Verdict:
    """One site's verdict for one job: passed or the rule that rejected it, and its scores."""

    site_id: str
    passed: bool
    reason: str = ""  # e.g. "residency R2: data class sensitive, site in gansu != henan"
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Decision:
    """The outcome for one job: a placement, or None with `reason`; `verdicts` explain every site."""

    job_id: str
    placement: Placement | None
    reason: str = ""
    verdicts: list[Verdict] | None = None
    policy: str = ""
    retryable: bool = False  # True: some site passes every static rule but none has room now - keep it queued

    @property
    def placed(self) -> bool:
        return self.placement is not None
