"""Routes of tenancy: quotas (read, replace), usage against them and fair share, and quotes (docs/service.md).

GET /quotas and GET /usage: staff see every tenant, a tenant only its own rules and usage. PUT /quotas (admin,
operator) replaces the tenancy document the loop enforces, validated like a tenancy file and audited. POST /quotes
answers where a job could run now, without submitting it (service/quotes.py).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body

from suanwang.service import quotes, tenancy
from suanwang.service.answers import errors
from suanwang.service.schemas import JobIn

EXAMPLE = {
    "name": "banks-and-labs",
    "half_life_h": 24,
    "tenants": {"bank-a": 1, "ai-lab": 2},
    "quotas": [
        {"id": "Q1", "tenant": "bank-a", "cores": 4000},
        {"id": "Q2", "tenant": "bank-a", "cores": 1000, "outside": "shanghai"},
        {"id": "Q3", "tenant": "ai-lab", "cards": 64, "within": "west"},
    ],
}
Document = Annotated[dict[str, Any], Body(examples=[EXAMPLE], description="a tenancy document (docs/tenancy.md)")]


def install(app_router: APIRouter, deps: dict) -> None:
    """Add the tenancy routes to `app_router`; `deps` holds the API's dependency types (Sess, Svc, Who, Staff),
    passed in so this module needs nothing of api.py."""
    sess, svc_t, who_t, staff_t = deps["Sess"], deps["Svc"], deps["Who"], deps["Staff"]

    @app_router.get("/quotas", tags=["tenancy"], responses=errors(403))
    def get_quotas(s: sess, who: who_t) -> dict:
        """The tenancy document the service enforces (quotas, fair-share weights, half-life): all of it for admins
        and operators; for a tenant its own weight and quota rules only. `document` null: none is set."""
        return tenancy.document_for(tenancy.stored(s), None if who.staff else who.tenant)

    @app_router.put("/quotas", tags=["tenancy"], responses=errors(403, 422))
    def put_quotas(body: Document, s: sess, svc: svc_t, who: staff_t) -> dict:
        """Replace the tenancy document (admin / operator; audited `quotas_set`). Checked as a tenancy file is:
        a 422 names the field (`quotas.N.field` for rule N, counting from 0). The scheduling loop enforces it from
        its next pass."""
        tenancy.validate(body, svc.atlas)
        tenancy.store(s, body, who.actor)
        s.commit()
        return tenancy.document_for(tenancy.stored(s), None)

    @app_router.get("/usage", tags=["tenancy"], responses=errors(403))
    def get_usage(s: sess, svc: svc_t, who: who_t) -> dict:
        """Per tenant: cores and cards its placed and running jobs hold, each quota rule's use against its cap,
        decayed core- and card-hours and its fair-share value (docs/tenancy.md); a tenant sees only its own."""
        rules = svc.loop.tenancy.current(s)
        return tenancy.usage_report(s, svc.atlas, rules, svc.loop.clock(), None if who.staff else who.tenant)

    @app_router.post("/quotes", tags=["tenancy"], responses=errors(403, 422))
    def post_quote(body: JobIn, s: sess, svc: svc_t, who: who_t) -> dict:
        """Where this job could run now, without submitting it: each feasible site with its predicted start,
        cost, energy, carbon, latency and transfer (best first, as the policy ranks them), every other site with
        the rule that rules it out. The body is a submission's (`tenant`: staff only, for that tenant's quotas)."""
        quoter = getattr(svc, "quoter", None)
        if quoter is None:
            quoter = svc.quoter = quotes.Quoter(svc.atlas, svc.cfg.policy, svc.placer._make_policy)
        return quotes.quote(s, quoter, svc.atlas, who, body, svc.loop.clock(), svc.cfg.allow_commands)
