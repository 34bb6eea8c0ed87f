"""The Backend protocol: how the console talks to one orchestration node, whatever it is.

Required methods are abstract; the actions are optional and declared through ``capabilities`` so the
console can enable a key, or say why it is off, without calling anything. Every action takes the
operator's identity and an optional reason, and every backend records it in its audit trail.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from .errors import Invalid, Unsupported
from .model import AuditEntry, Checkpoint, DispatchRequest, LogRecord, NodeInfo, NodeSnapshot, Target, Task


class Backend(abc.ABC):
    """One node. Instances are created by the registry from a node's config section."""

    #: the name a config's ``backend = "..."`` uses to pick this class
    name: ClassVar[str]

    #: actions this backend can carry out (see ``backends.model.Capability``)
    capabilities: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, node: Any, *, clock: Callable[[], float], thresholds: Any = None) -> Backend:
        """Build from a config ``[[nodes]]`` entry (``name``, ``url``, ``options``, ... attributes).

        ``thresholds`` is the config's ``[thresholds]`` (``[warning, critical]`` pairs by name), for backends
        that judge health themselves."""
        raise Invalid(f"the {cls.name} backend cannot be configured from a config file")

    async def open(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Connect or load; called once before the first snapshot."""

    async def close(self) -> None:  # noqa: B027
        """Release connections and files; called once when the console leaves."""

    async def __aenter__(self) -> Backend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    @abc.abstractmethod
    def info(self) -> NodeInfo:
        """Who this node is; cheap, no I/O."""

    @abc.abstractmethod
    async def snapshot(self) -> NodeSnapshot:
        """Everything the console shows about the node, as of now."""

    @abc.abstractmethod
    def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        """Log records with ``seq > since_seq``; with ``follow``, keep yielding new ones as they come."""

    # --- optional actions: default to Unsupported, enabled by capabilities -----------------------------

    #: why this node refuses every action, in words, when it knows (e.g. "token bob is a viewer")
    read_only_reason: str | None = None

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def capability_note(self, capability: str) -> str | None:
        """Why ``capability`` is off, in words an operator can act on; None for the generic wording."""
        return None

    def _unsupported(self, action: str) -> Unsupported:
        return Unsupported(f"the {self.name} backend cannot {action}")

    async def dispatch(self, request: DispatchRequest, *, operator: str, reason: str | None = None) -> Task:
        raise self._unsupported("dispatch work")

    async def pause(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        raise self._unsupported("pause")

    async def resume(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        raise self._unsupported("resume")

    async def stop(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        raise self._unsupported("stop")

    async def checkpoint(self, label: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        raise self._unsupported("take checkpoints")

    async def rollback(self, checkpoint_id: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        """Roll back to ``checkpoint_id``; returns the automatic safety checkpoint taken just before."""
        raise self._unsupported("roll back")

    async def interrupted_rollback(self) -> str | None:
        """One line for an operator when a rollback on this node was interrupted (killed half-way) and
        waits for :meth:`recover_rollback`, naming the command that finishes it; None when none is."""
        return None

    async def recover_rollback(self, *, operator: str, reason: str | None = None) -> Checkpoint | None:
        """Finish the rollback that was interrupted; returns its safety checkpoint (the undo), or None when
        there was nothing to recover."""
        raise self._unsupported("recover an interrupted rollback")

    async def rollback_preview(self, checkpoint_id: str) -> list[str]:
        """Lines saying what a rollback to ``checkpoint_id`` would change beyond what the checkpoint covers
        (e.g. files changed since in each git workspace); empty when the backend cannot tell."""
        return []

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        raise self._unsupported("show an audit trail")
