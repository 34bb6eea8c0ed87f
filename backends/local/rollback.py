"""Checkpoints and rollbacks of the local node, crash-safe: a rollback killed at any moment is found by the
next command and finished by ``fleetdeck rollback --recover``.

A rollback goes through the steps of ``rollback_journal.STEPS``, journalled before anything changes and
after each step: pause the agents working in the affected workspaces, take the safety checkpoint (the undo)
and record it in the store, restore the workspaces (their files and what git has staged), restore the
store's plan and task state, resume the agents it paused. Every step is idempotent, so recovery simply
carries on from the last step the journal says was done, up to the same end a rollback that was never
interrupted reaches.

Recovery finishes the rollback rather than undoing it: the operator asked for it and confirmed it, its
target always exists (the safety checkpoint may not have been recorded yet when it was killed), and
finishing runs the same, well-trodden code as every rollback. Undoing it is then the ordinary rollback
to the safety checkpoint, whose id recovery prints as every rollback does.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from backends.errors import BackendError, Conflict, Forbidden
from backends.model import Checkpoint

from . import git_scratch, gitsnap, read_only
from . import rollback_journal as journals
from .rollback_journal import Journal, hold
from .store import Store

#: Actions._control_agent: (action, record, operator, reason, *, strict) -> what happened, in words
Control = Callable[..., str]

#: agents in these states are working, so a rollback pauses them while it changes their workspace
WORKING = ("running", "starting", "idle", "waiting")
LOCK_WAIT_S = 10.0
#: a killed rollback's git processes may still run for a moment: recovery waits for them to finish
RECOVERY_LOCK_WAIT_S = 30.0


class Rollbacks:
    def __init__(
        self, store: Store, state_dir: Path, *, node: str, read_only: bool, control: Control
    ) -> None:
        self.store = store
        self.state_dir = state_dir
        self.node = node
        self.read_only = read_only
        self.control = control

    # --- what the backend calls ------------------------------------------------------------------------

    def notice(self) -> str | None:
        """One line saying a rollback was interrupted and what to run; None when none was."""
        return journals.notice(self.state_dir, self.node)

    def checkpoint(
        self, label: str, operator: str, reason: str | None, *, automatic: bool = False
    ) -> Checkpoint:
        self._gate(operator, "checkpoint", None, reason, label=label)
        try:
            with self._locked(LOCK_WAIT_S):
                self._refuse_if_interrupted()
                checkpoint = self._take_checkpoint(label, operator, automatic=automatic)
        except BackendError as exc:
            self._audit_failure(operator, "checkpoint", None, reason, exc, label=label)
            raise
        self.store.audit(
            operator,
            "checkpoint",
            None,
            outcome="ok",
            params={"label": label},
            reason=reason,
            detail=f"{checkpoint.id}: {len(checkpoint.covers)} item(s)",
        )
        return checkpoint

    def preview(self, checkpoint_id: str) -> list[str]:
        record = self.store.checkpoint_record(checkpoint_id)
        lines = [_changes(workspace, ref) for workspace, ref in sorted(record.git_refs.items())]
        pending = self.notice()
        return [f"refused until recovered: {pending}", *lines] if pending else lines

    def rollback(self, checkpoint_id: str, operator: str, reason: str | None) -> Checkpoint:
        target = f"checkpoint:{checkpoint_id}"
        self._gate(operator, "rollback", target, reason)
        journal: Journal | None = None
        try:
            with self._locked(LOCK_WAIT_S):
                self._refuse_if_interrupted()
                record = self.store.checkpoint_record(checkpoint_id)
                for workspace, ref in record.git_refs.items():
                    problem = _workspace_problem(Path(workspace), ref)
                    if problem:
                        raise Conflict(f"cannot roll back {workspace}: {problem}; nothing was changed")
                working = [
                    r.id
                    for r in self.store.agent_rows()
                    if r.workspace in record.git_refs and r.state in WORKING
                ]
                journal = Journal.start(
                    checkpoint_id,
                    dict(record.git_refs),
                    working,
                    operator=operator,
                    reason=reason,
                    pid=os.getpid(),
                    started_at=time.time(),
                    audit_seq=self.store.last_audit_seq(),
                )
                journals.write(self.state_dir, journal)
                hold("journaled")
                safety, restored = self._carry_out(journal, operator, reason)
                self._finish(journal, operator, reason, safety, restored, recovered=False)
                return safety
        except BackendError as exc:
            if journal is None:
                self._audit_failure(operator, "rollback", target, reason, exc)
                raise
            raise self._failed_half_way(journal, operator, reason, exc) from exc

    def recover(self, operator: str, reason: str | None) -> Checkpoint | None:
        """Finish the interrupted rollback, if there is one; its safety checkpoint (the undo), else None."""
        if self.read_only:
            journal = journals.read(self.state_dir)
            target = f"checkpoint:{journal.checkpoint}" if journal else None
            self._gate(operator, "rollback", target, reason, recover=True)
        with self._locked(RECOVERY_LOCK_WAIT_S):
            journal = journals.read(self.state_dir)
            if journal is None:
                return None
            self._clean_scratch(journal)
            if self._finished(journal):  # killed between its audit entry and removing the journal
                journals.remove(self.state_dir)
                return None
            target = f"checkpoint:{journal.checkpoint}"
            if not journal.reported:
                self.store.audit(
                    journal.operator,
                    "rollback",
                    target,
                    outcome="failed",
                    params={"journal": journal.id},
                    reason=journal.reason,
                    detail=f"interrupted: {journal.describe()}; recovery by {operator}",
                )
                journal.reported = True
                journals.write(self.state_dir, journal)
            try:
                safety, restored = self._carry_out(journal, operator, reason)
            except BackendError as exc:
                self._audit_failure(operator, "rollback", target, reason, exc, journal=journal.id)
                raise Conflict(
                    f"recovery of the rollback to {journal.checkpoint} failed: {exc}; fix that and run "
                    "fleetdeck rollback --recover again"
                ) from exc
            self._finish(journal, operator, reason, safety, restored, recovered=True)
            return safety

    # --- the steps -------------------------------------------------------------------------------------

    def _carry_out(self, journal: Journal, operator: str, reason: str | None) -> tuple[Checkpoint, int]:
        """Every step not done yet, in order; the safety checkpoint and how many files were restored."""
        record = self.store.checkpoint_record(journal.checkpoint)
        if not journal.done("paused"):
            for agent_id in journal.agents:
                self._act_on(agent_id, "pause", operator, reason)
            self._advance(journal, "paused")
        safety = self._safety(journal, operator)
        restored = 0
        if not journal.done("restored"):
            covered = set(self.store.checkpoint_record(safety.id).git_refs)
            for workspace, ref in record.git_refs.items():
                problem = _workspace_problem(Path(workspace), ref)
                if problem:
                    raise Conflict(f"cannot roll back {workspace}: {problem}")
                previous = journal.safety_ref if workspace in covered else None
                restored += len(gitsnap.restore(Path(workspace), ref, previous=previous))
            self._advance(journal, "restored")
        if not journal.done("state-restored"):
            journal.holds = self.store.restore_state(record.state)
            self._advance(journal, "state-restored")
        if not journal.done("resumed"):
            for agent_id in journal.agents:
                if journal.holds.get(agent_id, "running") == "running":
                    self._act_on(agent_id, "resume", operator, reason)
            self._advance(journal, "resumed")
        return safety, restored

    def _safety(self, journal: Journal, operator: str) -> Checkpoint:
        """The safety checkpoint, recorded in the store before the first file changes."""
        if journal.safety is not None:
            return self.store.get_checkpoint(journal.safety)
        label = f"before rollback to {journal.checkpoint}"
        safety = self._recorded_safety(journal, label)
        if safety is None:
            # Refs of an attempt killed before it recorded them: no file has changed since, so take them anew.
            for workspace in self._workspaces(journal.workspaces):
                with suppress(BackendError):
                    gitsnap.delete(workspace, journal.safety_ref)
            safety = self._take_checkpoint(
                label, operator, automatic=True, also=journal.workspaces, ref=journal.safety_ref
            )
        journal.safety = safety.id
        self._advance(journal, "safety-recorded")
        return safety

    def _recorded_safety(self, journal: Journal, label: str) -> Checkpoint | None:
        """The safety checkpoint, if it reached the store just before the rollback was killed."""
        for checkpoint in self.store.checkpoints(limit=20):
            if (
                checkpoint.automatic
                and checkpoint.label == label
                and checkpoint.created_at >= journal.started_at
            ):
                refs = set(self.store.checkpoint_record(checkpoint.id).git_refs.values())
                if refs <= {journal.safety_ref}:
                    return checkpoint
        return None

    def _take_checkpoint(
        self,
        label: str,
        operator: str,
        *,
        automatic: bool,
        also: Iterable[str] = (),
        ref: str | None = None,
    ) -> Checkpoint:
        """Snapshot every agent's git workspace (and ``also``), then record the checkpoint in the store."""
        records = self.store.agent_rows()
        ref = ref or f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
        git_refs: dict[str, str] = {}
        for workspace in self._workspaces(also):
            gitsnap.snapshot(workspace, ref, f"fleetdeck checkpoint: {label}")
            git_refs[str(workspace)] = ref
        if automatic:
            hold("safety-refs")
        covers = [f"agent:{r.id}" for r in records]
        covers += [f"phase:{p.id}" for p in self.store.phases()]
        covers += [f"workspace:{w}" for w in git_refs]
        return self.store.add_checkpoint(
            label, operator, automatic=automatic, covers=covers, git_refs=git_refs
        )

    def _workspaces(self, also: Iterable[str] = ()) -> list[Path]:
        found = {r.workspace for r in self.store.agent_rows() if r.workspace} | set(also)
        return [Path(w) for w in sorted(found) if gitsnap.is_git_workspace(Path(w))]

    def _act_on(self, agent_id: str, action: str, operator: str, reason: str | None) -> None:
        # An agent that cannot take it (it stopped meanwhile, its process is gone) needs no pause or resume;
        # it must not stop the rollback, nor the resume of the others.
        with suppress(BackendError):
            self.control(action, self.store.agent_record(agent_id), operator, reason, strict=False)

    def _advance(self, journal: Journal, step: str) -> None:
        journal.step = step
        journals.write(self.state_dir, journal)
        hold(step)

    # --- endings ---------------------------------------------------------------------------------------

    def _finish(
        self,
        journal: Journal,
        operator: str,
        reason: str | None,
        safety: Checkpoint,
        restored: int,
        *,
        recovered: bool,
    ) -> None:
        done = f"restored {len(journal.workspaces)} workspace(s), {restored} file(s); undo: {safety.id}"
        self.store.audit(
            operator,
            "rollback",
            f"checkpoint:{journal.checkpoint}",
            outcome="ok",
            params={"journal": journal.id, **({"recovered": True} if recovered else {})},
            reason=reason,
            detail=f"recovered: finished the interrupted rollback; {done}" if recovered else done,
        )
        journals.remove(self.state_dir)

    def _failed_half_way(
        self, journal: Journal, operator: str, reason: str | None, exc: BackendError
    ) -> BackendError:
        """A step failed. Before the safety checkpoint was recorded nothing has changed: undo the pauses and
        forget the journal. After, some files may have: keep the journal, for recovery."""
        target = f"checkpoint:{journal.checkpoint}"
        if not journal.done("safety-recorded"):
            for agent_id in journal.agents:
                self._act_on(agent_id, "resume", operator, reason)
            for workspace in self._workspaces(journal.workspaces):
                with suppress(BackendError):
                    gitsnap.delete(workspace, journal.safety_ref)
            journals.remove(self.state_dir)
            self._audit_failure(operator, "rollback", target, reason, exc)
            return exc
        message = f"{exc}; the rollback is unfinished: fix that and run fleetdeck rollback --recover"
        journal.reported = True
        journals.write(self.state_dir, journal)
        self.store.audit(
            operator,
            "rollback",
            target,
            outcome="failed",
            params={"journal": journal.id},
            reason=reason,
            detail=message,
        )
        return Conflict(message)

    def _finished(self, journal: Journal) -> bool:
        return any(
            e.action == "rollback" and e.outcome == "ok" and e.params.get("journal") == journal.id
            for e in self.store.audit_since(journal.audit_seq)
        )

    # --- helpers ---------------------------------------------------------------------------------------

    def _gate(
        self, operator: str, action: str, target: str | None, reason: str | None, **params: object
    ) -> None:
        if self.read_only:
            read_only.deny(self.store, self.node, operator, action, target, reason, **params)

    @contextmanager
    def _locked(self, wait_s: float) -> Iterator[None]:
        """The node's checkpoint lock, handed down to every git process we start meanwhile: a git child
        still running after we were killed keeps it, so recovery waits for it instead of racing it."""
        with journals.node_lock(self.state_dir, self.node, wait_s=wait_s) as fd, git_scratch.handing_down(fd):
            yield

    def _refuse_if_interrupted(self) -> None:
        # Under the lock, any journal is one whose rollback is not running any more.
        journal = journals.read(self.state_dir)
        if journal is not None:
            raise Conflict(journals.advice(journal, self.node))

    def _audit_failure(
        self,
        operator: str,
        action: str,
        target: str | None,
        reason: str | None,
        exc: BackendError,
        **params: object,
    ) -> None:
        outcome = "denied" if isinstance(exc, Forbidden) else "failed"
        self.store.audit(
            operator, action, target, outcome=outcome, params=params, reason=reason, detail=str(exc)
        )

    def _clean_scratch(self, journal: Journal) -> None:
        for workspace in self._workspaces(journal.workspaces):
            with suppress(BackendError, OSError):
                gitsnap.clean_scratch(workspace)


def _changes(workspace: str, ref: str) -> str:
    problem = _workspace_problem(Path(workspace), ref)
    if problem:
        return f"workspace {workspace}: cannot roll back ({problem})"
    changed = gitsnap.changed_since(Path(workspace), ref)
    files = f"workspace {workspace}: {len(changed)} file(s) changed since" + (
        f" ({_some(changed)})" if changed else ""
    )
    return f"{files}; {_index_change(workspace, ref)}"


def _index_change(workspace: str, ref: str) -> str:
    """What the rollback does to what is staged, said before the operator confirms it."""
    staged = gitsnap.staged_since(Path(workspace), ref)
    if staged is None:
        return "git index left as it is (this checkpoint did not record it)"
    paths, head_moved = staged
    said = f"git index restored: {len(paths)} staged path(s) as at the checkpoint" + (
        f" ({_some(paths)})" if paths else ""
    )
    return said + ("; HEAD has moved since, and is kept" if head_moved else "")


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:6]) + (f" +{len(paths) - 6} more" if len(paths) > 6 else "")


def _workspace_problem(workspace: Path, ref: str) -> str | None:
    if not workspace.is_dir():
        return "the workspace no longer exists"
    operation = gitsnap.conflicting_operation(workspace)
    if operation:
        return operation
    if ref not in gitsnap.list_checkpoints(workspace):
        return f"its snapshot refs/fleetdeck/checkpoints/{ref} is missing"
    return None
