"""The site agent (`suanwang agent`): runs next to a site's engine and drives it for the service (control plane)
over outbound HTTP only - heartbeat with the engine's capacity, reconcile, submit, poll, report, cancel."""

from suanwang.agent.loop import Agent, AgentClient

__all__ = ["Agent", "AgentClient"]
