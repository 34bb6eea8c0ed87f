"""What this caller may do on a remote node, and the NodeInfo the console is shown for it.

The node's ``/v1/info`` says what its backend can do; ``/v1/whoami`` says what our token may do. The
console reads ``capabilities`` to enable keys, so they are reduced here to the intersection: a viewer's
console has its action keys off up front, with the reason in words, rather than a 403 after a confirm.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.model import ACTION_CAPABILITIES, ALL_CAPABILITIES, ENVIRONMENT_RANK, NodeInfo
from backends.node_api import Whoami

from .settings import HttpSettings

BACKEND_NAME = "http"
CAPABILITY_WORDS = {
    "dispatch": "dispatch work",
    "pause": "pause",
    "resume": "resume",
    "stop": "stop agents",
    "checkpoint": "take checkpoints",
    "rollback": "roll back",
    "audit": "show an audit trail",
    "logs": "stream logs",
    "sign_gate": "sign gates",
    "kpi_history": "keep KPI history",
}


@dataclass(frozen=True)
class Access:
    info: NodeInfo
    capabilities: frozenset[str]
    read_only_reason: str | None = None  # why every action is off, when they are
    served_backend: str | None = None
    served_capabilities: frozenset[str] = frozenset()

    def note(self, capability: str, node: str) -> str | None:
        """Why ``capability`` is off, in words; None while it is on (or before the node was asked)."""
        if capability in self.capabilities or self.served_backend is None:
            return None
        if capability in ACTION_CAPABILITIES and self.read_only_reason:
            return self.read_only_reason
        if capability not in self.served_capabilities:
            words = CAPABILITY_WORDS.get(capability, capability)
            return f"the {self.served_backend} backend behind node {node} cannot {words}"
        return None


def base_labels(settings: HttpSettings) -> dict[str, str]:
    return {"url": settings.url, "tls": settings.tls_label()}


def before_open(settings: HttpSettings) -> Access:
    """Until the node has answered: the config's name and environment, and every capability the API
    carries, so the console starts the log worker; the first call opens the connection and narrows them."""
    info = NodeInfo(
        id=settings.node_name,
        name=settings.node_name,
        backend=BACKEND_NAME,
        environment=settings.environment,  # type: ignore[arg-type]
        labels=base_labels(settings),
        read_only=settings.read_only,
        capabilities=ALL_CAPABILITIES,  # type: ignore[arg-type]
    )
    return Access(info=info, capabilities=ALL_CAPABILITIES)


def for_caller(server: NodeInfo, whoami: Whoami, settings: HttpSettings) -> Access:
    """The node's own info, narrowed to what ``whoami`` may do; its backend's name kept in the labels."""
    served = frozenset(str(c) for c in server.capabilities)
    capabilities = served
    reason: str | None = None
    if whoami.role != "operator":
        capabilities = served - ACTION_CAPABILITIES
        reason = (
            f"the token from {settings.token_source} is {whoami.name!r}, a {whoami.role} on node "
            f"{settings.node_name}: actions need an operator token"
        )
    elif server.read_only:
        capabilities = served - ACTION_CAPABILITIES
        reason = f"node {settings.node_name} is served read-only"
    labels = {
        **server.labels,
        **base_labels(settings),
        "served_backend": server.backend,
        "role": whoami.role,
        "token_name": whoami.name,
    }
    info = NodeInfo(
        id=server.id,
        name=server.name,
        backend=BACKEND_NAME,
        version=server.version,
        hostname=server.hostname,
        environment=stricter(settings.environment, server.environment),  # type: ignore[arg-type]
        labels=labels,
        read_only=server.read_only or reason is not None or settings.read_only,
        capabilities=capabilities,  # type: ignore[arg-type]
    )
    return Access(
        info=info,
        capabilities=capabilities,
        read_only_reason=reason,
        served_backend=server.backend,
        served_capabilities=served,
    )


def stricter(configured: str, reported: str) -> str:
    """A node that calls itself production is treated as production, whatever the config forgot."""
    return max(configured, reported, key=lambda env: ENVIRONMENT_RANK.get(env, 0))
