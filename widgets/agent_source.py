"""Where an agent comes from, in words, read from its kind and labels (Agent detail's "Source" line).

Agents reach fleetdeck in several ways, and which one says what its figures are and what an action on it
can do: OpenTelemetry alone (kind "otel": nothing to pause or stop), a Claude Code or Codex session's hooks
(kind "reporting", label ``source``), hooks and telemetry both (the telemetry's labels merged into the hook's
agent: ``service``, ``sdk``), a process fleetdeck supervises, an agent that reports through
``fleetdeck report`` or AgentReporter, a Ray actor.

Every label value is made terminal-safe (:func:`backends.safe_text.terminal_safe`) and cut before it is put
into the sentence, so a cut never splits a shown control from its text; the caller still shows the whole
line with ``safe_text``.
"""

from __future__ import annotations

from collections.abc import Mapping

from backends.model import Agent
from backends.safe_text import terminal_safe

LABEL_MAX = 48  # a label's value in the line; the whole of it is on the Labels line
SESSION_SHORT = 8  # a session id as people quote it: its first eight characters
# the labels only telemetry gives an agent (backends/otlp/identity.py): a hook agent that has them has
# had telemetry merged into it
_TELEMETRY_LABELS = ("sdk", "service", "instance")
_SESSIONS = {"claude-code": "Claude Code", "codex": "Codex"}


def _label(labels: Mapping[str, str], name: str, limit: int = LABEL_MAX) -> str:
    value = terminal_safe(labels.get(name, "")).strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _telemetry(labels: Mapping[str, str]) -> list[str]:
    """ "service shop-agent", "instance 7f3a…", "python 1.45.2 SDK": what the telemetry says it is."""
    parts = []
    service, instance, sdk = _label(labels, "service"), _label(labels, "instance"), _label(labels, "sdk")
    if service:
        parts.append(f"service {service}")
    if instance and instance != service:
        parts.append(f"instance {instance}")
    if sdk:
        parts.append(f"{sdk} SDK")
    return parts


def _session(agent: Agent, product: str) -> str:
    labels = agent.labels
    session = _label(labels, "session_id", SESSION_SHORT + 1)[:SESSION_SHORT]
    head = f"{product} session {session}" if session else f"{product} session"
    hooks = agent.kind != "otel"
    telemetry = agent.kind == "otel" or any(labels.get(name) for name in _TELEMETRY_LABELS)
    how = "hooks + telemetry" if hooks and telemetry else "telemetry" if telemetry else "hooks"
    parts = [f"{head} ({how})"]
    project = _label(labels, "project")
    if project:
        parts.append(f"project {project}")
    return " · ".join(parts)


def agent_source(agent: Agent) -> str:
    """Where ``agent`` comes from, in a line: "OpenTelemetry · service shop-agent · python 1.45.2 SDK",
    "Claude Code session 1a2b3c4d (hooks + telemetry)", "process supervised by fleetdeck", "Ray actor"."""
    labels = agent.labels
    source = labels.get("source", "")
    product = _SESSIONS.get(source)
    if product is not None and agent.kind in ("otel", "reporting"):
        return _session(agent, product)
    if agent.kind == "otel":
        return " · ".join(["OpenTelemetry", *_telemetry(labels)])
    if agent.kind == "process":
        by = _label(labels, "dispatched_by")
        return "process supervised by fleetdeck" + (f" · dispatched by {by}" if by else "")
    if agent.kind == "reporting":
        if source == "fleetdeck":
            role = _label(labels, "role")
            return "fleetdeck itself" + (f" · {role}" if role else "")
        return "reports through fleetdeck report / AgentReporter"
    if agent.kind == "actor":
        cls = _label(labels, "class")
        return "Ray actor" + (f" · class {cls}" if cls else "")
    return f"{terminal_safe(agent.kind)} agent"
