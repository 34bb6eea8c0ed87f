"""A third-party backend as a separate package would ship it, for the registry's entry-point tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from backends.base import Backend
from backends.model import LogRecord, NodeInfo, NodeSnapshot


class FakeBackend(Backend):
    name = "fake"
    capabilities = frozenset({"logs"})

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(id="fake-01", name="fake-01", backend=self.name)

    async def snapshot(self) -> NodeSnapshot:
        return NodeSnapshot(node=self.info, observed_at=0.0)

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        yield LogRecord(seq=since_seq + 1, ts=0.0, level="info", source="node", message="hello")


NOT_A_BACKEND = object()


class NotABackend:
    """Looks like a backend class by name only."""

    name = "impostor"
