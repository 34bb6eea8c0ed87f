"""StaticBackend: a node whose agents, machine and logs are what a file says, shown read-only.

For a machine fleetdeck cannot reach (a lab box behind a firewall, a batch system that writes a status
file), or for trying a layout with made-up data. The file is read when the node is built (so a missing
or malformed one fails when the console starts) and again whenever it changes.

    [[nodes]]
    name = "lab-07"
    backend = "static"
    path = "lab-07.toml"      # relative to the config file
    poll_s = 2.0              # how often a followed log looks for new lines (default 1)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Annotated

import msgspec

from backends.base import Backend
from backends.errors import Invalid, Unreachable
from backends.model import Environment, LogRecord, NodeInfo, NodeSnapshot
from backends.plugin import BackendOptions, NodeSettings, Problem, Thresholds

from .fleet_file import FleetFile, FleetFileError, read_fleet_file

SUFFIXES = (".toml", ".json")


class StaticOptions(BackendOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The keys of a static node's ``[[nodes]]`` entry, beside name, backend, environment, read_only."""

    #: the fleet file (TOML or JSON); required
    path: Path
    #: seconds between looks at the file while a log is followed
    poll_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0

    def problems(self) -> Iterator[Problem]:
        if self.path.suffix not in SUFFIXES:
            yield "path", f"expected a .toml or .json file, got {self.path.name!r}"


class StaticBackend(Backend):
    name = "static"
    Options = StaticOptions
    capabilities = frozenset({"logs"})  # no actions: there is nothing behind the file to act on
    read_only_reason = "a static node only shows what its file says"

    def __init__(
        self,
        path: Path,
        *,
        node_name: str = "static",
        environment: Environment = "dev",
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.node_name = node_name
        self.environment = environment
        self.poll_s = poll_s
        self.clock = clock
        self._stamp: tuple[int, int] | None = None
        self._fleet = FleetFile()

    @classmethod
    def from_config(
        cls,
        node: NodeSettings[StaticOptions],
        *,
        clock: Callable[[], float],
        thresholds: Thresholds | None = None,
    ) -> StaticBackend:
        """``path`` and ``poll_s`` from the entry; the file is read now, so a bad one is an Invalid naming
        it. The file says each agent's health itself: no thresholds here."""
        options = node.backend_options
        if Path(options.path).suffix not in SUFFIXES:  # options built in code are not validated
            raise Invalid(f"path must name a .toml or .json file, not {options.path}")
        backend = cls(
            Path(options.path).expanduser(),
            node_name=node.name,
            environment=node.environment,
            poll_s=options.poll_s,
            clock=clock,
        )
        try:
            backend._read()
        except FleetFileError as exc:
            raise Invalid(str(exc)) from None
        return backend

    def __repr__(self) -> str:
        return f"StaticBackend(node={self.node_name!r}, path={str(self.path)!r})"

    def _read(self) -> FleetFile:
        """The file's content, read again only when its size or modification time changed."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise FleetFileError(f"fleet file {self.path} does not exist") from None
        except OSError as exc:
            raise FleetFileError(f"fleet file {self.path} cannot be read ({exc.strerror or exc})") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._fleet, self._stamp = read_fleet_file(self.path), stamp
        return self._fleet

    async def _current(self) -> FleetFile:
        try:
            return await asyncio.to_thread(self._read)
        except FleetFileError as exc:  # the node's only voice is the file: it has gone quiet
            raise Unreachable(f"node {self.node_name}: {exc}") from None

    @property
    def info(self) -> NodeInfo:
        return NodeInfo(
            id=self.node_name,
            name=self.node_name,
            backend=self.name,
            hostname=self._fleet.hostname,
            environment=self.environment,
            labels={**self._fleet.labels, "file": str(self.path)},
            read_only=True,
            capabilities=self.capabilities,  # type: ignore[arg-type]
        )

    async def snapshot(self) -> NodeSnapshot:
        fleet = await self._current()
        return NodeSnapshot(
            node=self.info,
            observed_at=self.clock(),
            system=fleet.system,
            gpus=fleet.gpus,
            agents=fleet.agents,
            phases=fleet.phases,
        )

    async def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        cursor = since_seq
        while True:
            for record in (await self._current()).records(cursor):
                yield record
                cursor = record.seq
            if not follow:
                return
            await asyncio.sleep(self.poll_s)

    def capability_note(self, capability: str) -> str | None:
        return None if capability in self.capabilities else self.read_only_reason
