"""What Ray does not keep for us, kept in one small JSON file in the node's state dir: checkpoints (the
specs of the jobs running when each was taken), the audit trail of actions done through fleetdeck, and the
jobs a rollback stopped.

Every change is a read-modify-write under an exclusive ``flock`` and lands with an atomic rename, so a
console and a ``fleetdeck`` command acting on the same cluster at once neither lose an entry nor leave a
half-written file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from backends.errors import BackendError, NotFound
from backends.model import AuditEntry, Checkpoint, ModelError, from_builtins, to_builtins

STATE_FILE = "ray-state.json"
MAX_AUDIT = 5000  # oldest entries beyond this are dropped: the file is read on every snapshot
MAX_CHECKPOINTS = 200


class RayState:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / STATE_FILE

    # --- reading -------------------------------------------------------------------------------------------

    async def checkpoints(self) -> list[Checkpoint]:
        data = await asyncio.to_thread(self._read)
        return [self._checkpoint(c) for c in data["checkpoints"]]

    async def checkpoint_jobs(self, checkpoint_id: str) -> tuple[Checkpoint, list[dict[str, Any]]]:
        data = await asyncio.to_thread(self._read)
        for entry in data["checkpoints"]:
            if entry["checkpoint"].get("id") == checkpoint_id:
                return self._checkpoint(entry), list(entry.get("jobs") or [])
        raise NotFound(f"no checkpoint {checkpoint_id!r} (see: fleetdeck checkpoints)")

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        data = await asyncio.to_thread(self._read)
        entries = [self._audit_entry(e) for e in data["audit"]]
        return [e for e in entries if e.seq > since_seq]

    async def rolled_back(self) -> frozenset[str]:
        data = await asyncio.to_thread(self._read)
        return frozenset(str(x) for x in data["rolled_back"])

    # --- writing -------------------------------------------------------------------------------------------

    async def add_checkpoint(self, checkpoint: Checkpoint, jobs: list[dict[str, Any]]) -> None:
        def change(data: dict[str, Any]) -> None:
            data["checkpoints"].append({"checkpoint": to_builtins(checkpoint), "jobs": jobs})
            del data["checkpoints"][:-MAX_CHECKPOINTS]

        await asyncio.to_thread(self._update, change)

    async def mark_rolled_back(self, job_ids: list[str]) -> None:
        def change(data: dict[str, Any]) -> None:
            data["rolled_back"] = sorted(set(data["rolled_back"]) | set(job_ids))

        await asyncio.to_thread(self._update, change)

    async def record(self, make: Callable[[int], AuditEntry]) -> AuditEntry:
        """Append the entry ``make(seq)`` builds with the next audit seq; returns it."""
        made: list[AuditEntry] = []

        def change(data: dict[str, Any]) -> None:
            seq = int(data.get("next_audit_seq", 1))
            entry = make(seq)
            data["next_audit_seq"] = seq + 1
            data["audit"].append(to_builtins(entry))
            del data["audit"][:-MAX_AUDIT]
            made.append(entry)

        await asyncio.to_thread(self._update, change)
        return made[0]

    # --- the file ------------------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        with self._locked(exclusive=False):
            return self._load()

    def _update(self, change: Callable[[dict[str, Any]], None]) -> None:
        with self._locked(exclusive=True):
            data = self._load()
            change(data)
            fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=".ray-state-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(data, handle, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            raise BackendError(f"the Ray state file {self.path} cannot be read ({exc})") from None
        if not isinstance(data, dict):
            raise BackendError(f"the Ray state file {self.path} does not hold a JSON object")
        for key in ("checkpoints", "audit", "rolled_back"):
            if not isinstance(data.get(key), list):
                data[key] = []
        return data

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock = open(self.state_dir / ".ray-state.lock", "a+")  # noqa: SIM115 - held for the block
        except OSError as exc:
            raise BackendError(
                f"the Ray state dir {self.state_dir} cannot be used ({exc.strerror})"
            ) from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield

    def _checkpoint(self, entry: dict[str, Any]) -> Checkpoint:
        try:
            return from_builtins(entry["checkpoint"], Checkpoint)
        except (ModelError, KeyError, TypeError) as exc:
            raise BackendError(f"the Ray state file {self.path} holds a bad checkpoint: {exc}") from None

    def _audit_entry(self, entry: dict[str, Any]) -> AuditEntry:
        try:
            return from_builtins(entry, AuditEntry)
        except ModelError as exc:
            raise BackendError(f"the Ray state file {self.path} holds a bad audit entry: {exc}") from None
