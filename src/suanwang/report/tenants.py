"""The report's tenants section: per policy each tenant's share against its entitlement, waits, borrowed and
reclaimed core-hours, preemptions and lost work, Jain's index, the quota peaks and the first evictions with
their explanations. Rendered only when the results carry a tenants section (`simulate` with tenants)."""

from __future__ import annotations

import jinja2

STRINGS = {
    "en": {
        "title": "Tenants",
        "note": (
            "Share of the network's core- and card-hours each tenant used against the share its weight entitles "
            "it to; borrowed: core-hours used beyond its own quota from its cohort's idle room; reclaimed: "
            "core-hours its borrowed runs had used when the owner took the room back; lost: work thrown away by "
            "evictions (since the last checkpoint)."
        ),
        "jain": "Jain's fairness index over weighted dominant shares",
        "tenant": "tenant",
        "weight": "weight",
        "entitled": "entitled share",
        "dominant": "dominant share",
        "done": "done",
        "not_run": "not run",
        "wait": "wait p50 / p95 h",
        "borrowed": "borrowed core-h",
        "reclaimed": "reclaimed core-h",
        "preempted": "preempted",
        "lost": "lost core-h",
        "quota": "quota",
        "rule": "rule",
        "peak": "peak cores / cards",
        "evictions": "evictions",
        "none": "no evictions",
        "job": "job",
        "site": "site",
        "at": "at h",
        "why": "why",
    },
    "zh": {
        "title": "租户",
        "note": (
            "各租户使用的核时、卡时占全网的份额与其权重应得份额之比；借用：超出自身配额、借用同组空闲配额的核时；"
            "收回：配额所有者收回时被借用作业已用的核时；损失：驱逐丢弃的工作（自上次检查点起）。"
        ),
        "jain": "加权主导份额的 Jain 公平指数",
        "tenant": "租户",
        "weight": "权重",
        "entitled": "应得份额",
        "dominant": "主导份额",
        "done": "完成",
        "not_run": "未运行",
        "wait": "等待 p50 / p95 小时",
        "borrowed": "借用核时",
        "reclaimed": "收回核时",
        "preempted": "被抢占",
        "lost": "损失核时",
        "quota": "配额",
        "rule": "规则",
        "peak": "峰值 核 / 卡",
        "evictions": "驱逐",
        "none": "无驱逐",
        "job": "作业",
        "site": "节点",
        "at": "时刻（小时）",
        "why": "原因",
    },
}

TEMPLATE = """
  <section class="card tenants">
    <h2>{{ t.title }} — <span class="policy-name">{{ default }}</span></h2>
    <p class="note">{{ t.note }}</p>
    {% for name, sec in sections %}
    <div class="tenants-policy" data-policy="{{ name }}"{% if name != default %} hidden{% endif %}>
      <p>{{ t.jain }}: <b>{{ "%.3f" | format(sec.jain_index) }}</b></p>
      <div class="scroll">
      <table class="num">
        <thead><tr><th>{{ t.tenant }}</th><th>{{ t.weight }}</th><th>{{ t.entitled }}</th><th>{{ t.dominant }}</th>
        <th>{{ t.done }}</th><th>{{ t.not_run }}</th><th>{{ t.wait }}</th><th>{{ t.borrowed }}</th>
        <th>{{ t.reclaimed }}</th><th>{{ t.preempted }}</th><th>{{ t.lost }}</th></tr></thead>
        <tbody>
        {% for r in sec.tenants %}
          <tr><th>{{ r.tenant }}</th><td>{{ r.weight }}</td><td>{{ "%.3f" | format(r.entitled_share) }}</td>
          <td>{{ "%.4f" | format(r.dominant_share) }}</td><td>{{ r.done }}</td><td>{{ r.failed + r.rejected }}</td>
          <td>{{ "%.2f / %.2f" | format(r.wait_p50_h, r.wait_p95_h) }}</td>
          <td>{{ "%.4g" | format(r.get("borrowed_core_hours", 0)) }}</td>
          <td>{{ "%.4g" | format(r.get("reclaimed_core_hours", 0)) }}</td><td>{{ r.get("preemptions", 0) }}</td>
          <td>{{ "%.4g" | format(r.get("lost_core_hours", 0)) }}</td></tr>
        {% endfor %}
        </tbody>
      </table>
      </div>
      {% if sec.quotas %}
      <div class="scroll">
      <table class="num">
        <thead><tr><th>{{ t.quota }}</th><th>{{ t.tenant }}</th><th>{{ t.rule }}</th><th>{{ t.peak }}</th></tr></thead>
        <tbody>
        {% for q in sec.quotas %}
          <tr><th>{{ q.id }}</th><td>{{ q.tenant }}</td><td>{{ q.rule }}</td>
          <td>{{ q.peak_cores }} / {{ q.peak_cards }}</td></tr>
        {% endfor %}
        </tbody>
      </table>
      </div>
      {% endif %}
      {% set ev = sec.get("evictions", {}) %}
      {% if ev and ev.total %}
      <p>{{ t.evictions }}: {{ ev.total }}
      {%- for rule, n in ev.by_rule | dictsort %} · {{ rule }} {{ n }}{% endfor %}</p>
      <div class="scroll">
      <table>
        <thead><tr><th>{{ t.job }}</th><th>{{ t.tenant }}</th><th>{{ t.site }}</th><th>{{ t.at }}</th>
        <th>{{ t.why }}</th><th>{{ t.lost }}</th></tr></thead>
        <tbody>
        {% for e in ev.first %}
          <tr><th>{{ e.job }}</th><td>{{ e.tenant }}</td><td>{{ e.site }}</td><td>{{ e.at_h }}</td><td>{{ e.why }}</td>
          <td>{{ e.lost_core_hours }}</td></tr>
        {% endfor %}
        </tbody>
      </table>
      </div>
      {% if ev.total > ev.first | length %}<p class="note">… {{ ev.total - ev.first | length }}</p>{% endif %}
      {% else %}
      <p class="empty">{{ t.none }}</p>
      {% endif %}
    </div>
    {% endfor %}
  </section>
"""


def tenants_section(results: dict, default_policy: str, lang: str = "en") -> str:
    """The tenants section as HTML ('' when no policy of `results` has a tenants section); `default_policy` is
    shown first (the page's policy switcher toggles the others)."""
    sections = [(n, r["tenants"]) for n, r in results.get("policies", {}).items() if isinstance(r.get("tenants"), dict)]
    if not sections:
        return ""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
    names = [n for n, _ in sections]
    default = default_policy if default_policy in names else names[0]
    return env.from_string(TEMPLATE).render(t=STRINGS.get(lang, STRINGS["en"]), sections=sections, default=default)


def with_tenants_section(html: str, results: dict, default_policy: str, lang: str = "en") -> str:
    """`html` (the report page) with the tenants section before the end of its main part."""
    section = tenants_section(results, default_policy, lang)
    if not section or "</main>" not in html:
        return html
    return html.replace("</main>", section + "</main>", 1)
