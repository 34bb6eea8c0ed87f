"""The Backend contract: how the console talks to one orchestration node, whatever it is.

A backend is a subclass of :class:`Backend`, registered under the ``fleetdeck.backends`` entry-point group
(``backends.registry``), that declares:

- ``name``: what a config's ``backend = "..."`` calls it;
- ``Options``: the keys of its ``[[nodes]]`` entries, as a msgspec Struct (``backends.plugin``);
- ``capabilities``: which optional actions it carries out, so the console can enable a key, or say why it
  is off, without calling anything.

The reading methods (``info``, ``snapshot``, ``logs``) are abstract; every action defaults to raising
:class:`~backends.errors.Unsupported`. Every action takes the operator's identity and an optional reason,
and a backend records each one, carried out or refused, in its audit trail.

Every error a backend raises is a :class:`~backends.errors.BackendError` whose ``str()`` is one line an
operator can act on (it never holds a token). The subclasses say what kind of failure it was, and the
console and the command line act on the kind:

- :class:`~backends.errors.Unreachable`: the node did not answer, or answered something that is not the
  wire model (exit status 3); :class:`~backends.errors.TimedOut`, one of those, when it did not answer in
  time, so its last snapshot is shown stale for a while before it is called offline;
- :class:`~backends.errors.AuthFailed`: the node rejected our credentials;
- :class:`~backends.errors.Forbidden`: the node is read-only, or our role may not do this;
- :class:`~backends.errors.NotFound`: no agent, phase, task or checkpoint with that id;
- :class:`~backends.errors.Conflict`: the action does not fit the current state (resuming a running agent);
- :class:`~backends.errors.Invalid`: the request or the configuration itself is malformed;
- :class:`~backends.errors.Unsupported`: this backend (or the one behind a served node) cannot do it.

A backend may also raise BackendError itself for a failure of none of these kinds (the local node's store
is corrupt). The console survives any exception from a backend, but shows anything else as a bug.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any, ClassVar

from .errors import Invalid, Unsupported
from .model import (
    AuditEntry,
    Checkpoint,
    DispatchRequest,
    Gate,
    KpiSeries,
    LogRecord,
    NodeInfo,
    NodeSnapshot,
    SignedDecision,
    Target,
    Task,
)
from .plugin import BackendOptions, NodeSettings, NoOptions, Thresholds


class Backend(abc.ABC):
    """One node. The console builds one per ``[[nodes]]`` entry with :meth:`from_config`, calls
    :meth:`open` once, polls :meth:`snapshot` every refresh and follows :meth:`logs` while a log pane is
    open, and calls :meth:`close` once when it leaves. Calls may overlap: a poll, a log stream and an action
    can be in flight at once, so a backend guards what they share."""

    #: what a config's ``backend = "..."`` calls this class; also ``NodeInfo.backend``
    name: ClassVar[str]

    #: the keys of this backend's ``[[nodes]]`` entries beyond the common ones (``backends.plugin``); the
    #: config validates each entry against it before :meth:`from_config` is called
    Options: ClassVar[type[BackendOptions]] = NoOptions

    #: actions this backend can carry out (the names in ``backends.model.Capability``); an instance may
    #: narrow them once it knows more (what a remote node lets our token do)
    capabilities: frozenset[str] = frozenset()

    #: why this node refuses every action, in words, when it knows (e.g. "token bob is a viewer")
    read_only_reason: str | None = None

    @classmethod
    def from_config(
        cls, node: NodeSettings[Any], *, clock: Callable[[], float], thresholds: Thresholds | None = None
    ) -> Backend:
        """Build the backend for one configured node.

        Args:
            node: the node's name, environment and read_only flag, and in ``node.backend_options`` the
                rest of its entry as an instance of ``cls.Options``, already validated when it came from a
                config file.
            clock: the console's clock (UTC epoch seconds); read it rather than ``time.time`` so frozen
                snapshots and tests stay deterministic.
            thresholds: the config's ``[thresholds]`` as ``name -> (warning, critical)``, for a backend
                that judges its agents' health itself; None for the defaults.

        Returns: the backend, not yet open. No I/O beyond reading local files the entry names (a token
            file, a CA bundle), so a bad entry fails when the console starts, not at the first poll.

        Raises: Invalid naming the key, variable or file at fault (an unset ``$TOKEN`` variable, a
            missing CA file, an unknown key in ``options``); the default refuses every entry, for a
            backend that can only be built in code.
        """
        raise Invalid(f"the {cls.name} backend cannot be configured from a config file")

    async def open(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Connect or load; called once before the first snapshot, and safe to call again (the poll and the
        log worker may both open first).

        Raises: Unreachable (or TimedOut) when the node does not answer, AuthFailed when it rejects our
            credentials, BackendError when local state cannot be used.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections, files and threads; called once when the console leaves. Raises nothing a
        caller need handle: there is nothing left to do about a failure then."""

    async def __aenter__(self) -> Backend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    @abc.abstractmethod
    def info(self) -> NodeInfo:
        """Who this node is: id, name, backend, environment, labels, capabilities.

        Returns: NodeInfo. Cheap and without I/O: before :meth:`open` it is what the config says (a
            remote backend fills in the rest once the node has answered). Never raises.
        """

    @abc.abstractmethod
    async def snapshot(self) -> NodeSnapshot:
        """Everything the console shows about the node, as of now (opening it first if need be).

        Returns: NodeSnapshot with ``observed_at`` from the node's clock; a figure the node cannot measure
            is None, never a made-up 0.

        Raises: Unreachable when the node does not answer or answers something that is not the wire model,
            TimedOut when it does not answer in time, AuthFailed when it rejects our credentials,
            BackendError when the node's own state cannot be read.
        """

    @abc.abstractmethod
    def logs(self, since_seq: int = 0, follow: bool = False) -> AsyncIterator[LogRecord]:
        """The node's log records with ``seq > since_seq``, in ``seq`` order.

        Args:
            since_seq: the last ``seq`` already seen; 0 for the oldest record the node keeps.
            follow: keep yielding new records as they come, until the consumer stops iterating.

        Returns: an async iterator of LogRecord. Without ``follow`` it ends after the newest record; with
            it, a remote backend resumes from the last ``seq`` it yielded when its stream breaks.

        Raises: Unreachable, TimedOut or AuthFailed as :meth:`snapshot` does (when the first page cannot be
            read, or when a followed stream cannot be resumed); Unsupported when the node keeps no logs.
        """

    # --- optional actions: default to Unsupported, enabled by capabilities -----------------------------

    def supports(self, capability: str) -> bool:
        """Whether ``capability`` is in :attr:`capabilities`: the console calls an action only then."""
        return capability in self.capabilities

    def capability_note(self, capability: str) -> str | None:
        """Why ``capability`` is off, in words an operator can act on (e.g. "Ray has no pause/resume
        call ..."); None for the console's generic wording, or while it is on."""
        return None

    def _unsupported(self, action: str) -> Unsupported:
        return Unsupported(f"the {self.name} backend cannot {action}")

    # Every action below raises, besides what its own entry says:
    #   Forbidden   the node is read-only (audited as denied), or our token's role may not act;
    #   Unreachable, TimedOut, AuthFailed   as snapshot() does, for a node reached over the network;
    #   Unsupported the backend has no such capability (the default for every action).

    async def dispatch(self, request: DispatchRequest, *, operator: str, reason: str | None = None) -> Task:
        """Hand work to an agent (``request.agent_id``, ``kind``, ``payload``) or start a command as a new
        agent (``request.command``).

        Returns: the Task as queued or started, with its id.

        Raises: NotFound for an unknown agent; Conflict when it cannot take work now (stopped, failed, or
            an agent of that name already runs); Invalid for a malformed request (a bad agent name, a
            payload the backend cannot use); Unsupported for a kind of dispatch this backend cannot do
            (Ray takes commands, not payloads for a running actor).
        """
        raise self._unsupported("dispatch work")

    async def pause(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        """Pause an agent, a phase (its agents) or a task.

        Raises: NotFound for an unknown target; Conflict when it cannot be paused (already paused,
            stopped, failed, crash-looping).
        """
        raise self._unsupported("pause")

    async def resume(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        """Resume what :meth:`pause` paused.

        Raises: NotFound for an unknown target; Conflict when it is not paused.
        """
        raise self._unsupported("resume")

    async def stop(self, target: Target, *, operator: str, reason: str | None = None) -> None:
        """Stop an agent, a phase (its agents) or a task, for good.

        Raises: NotFound for an unknown target; Conflict when it already ended; Unsupported for a kind
            of target this backend cannot stop (a Ray actor).
        """
        raise self._unsupported("stop")

    async def checkpoint(self, label: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        """Record the node's state (and, where the backend has them, its git workspaces) under ``label``.

        Returns: the Checkpoint taken, with its id.

        Raises: Invalid for a label the backend cannot store; BackendError when the state cannot be
            recorded (a git workspace that refuses a commit).
        """
        raise self._unsupported("take checkpoints")

    async def rollback(self, checkpoint_id: str, *, operator: str, reason: str | None = None) -> Checkpoint:
        """Roll the node back to ``checkpoint_id``, taking an automatic safety checkpoint first.

        Returns: that safety checkpoint, so the rollback can itself be undone.

        Raises: NotFound for an unknown checkpoint; Conflict when the node cannot roll back now (a git
            workspace that cannot be restored, nothing changed; or an interrupted rollback that waits for
            :meth:`recover_rollback`).
        """
        raise self._unsupported("roll back")

    async def sign_gate(
        self, phase_id: str, decision: SignedDecision, *, operator: str, reason: str | None = None
    ) -> Gate:
        """Record an operator's go/no-go sign-off on a phase's gate (capability ``sign_gate``). It is shown
        beside the decision the node computes from the figures and never overrides it.

        Returns: the phase's gate with the sign-off in ``signed``.

        Raises: NotFound for an unknown phase; Conflict for a phase without a gate (a Ray job).
        """
        raise self._unsupported("sign gates")

    async def interrupted_rollback(self) -> str | None:
        """Whether a rollback on this node was interrupted (killed half-way) and waits for
        :meth:`recover_rollback`.

        Returns: one line for an operator naming the command that finishes it; None when none waits (the
            default, for a backend whose rollbacks cannot be interrupted).

        Raises: BackendError when the node's state cannot be read.
        """
        return None

    async def recover_rollback(self, *, operator: str, reason: str | None = None) -> Checkpoint | None:
        """Finish the rollback that was interrupted.

        Returns: its safety checkpoint (the undo), or None when there was nothing to recover.
        """
        raise self._unsupported("recover an interrupted rollback")

    async def rollback_preview(self, checkpoint_id: str) -> list[str]:
        """What a rollback to ``checkpoint_id`` would change beyond what the checkpoint covers (files
        changed since in each git workspace, jobs that would be stopped).

        Returns: one line per change; empty when there is none or the backend cannot tell (the default).

        Raises: NotFound for an unknown checkpoint.
        """
        return []

    async def kpi_history(
        self, since: float, *, names: Collection[str] | None = None, agent_ids: Collection[str] | None = None
    ) -> list[KpiSeries]:
        """The KPI figures the node keeps (capability ``kpi_history``), for trends and report cards.

        Args:
            since: UTC epoch seconds; only points measured at or after it.
            names, agent_ids: only these KPIs, only these agents (None: all).

        Returns: one series per (agent, KPI) with at least one point, oldest point first. The node keeps a
            bounded history (by age and count), so points older than it keeps are simply absent.

        Raises: Unreachable, TimedOut or AuthFailed as :meth:`snapshot` does; Unsupported when the backend
            keeps no KPI history (the default).
        """
        raise self._unsupported("keep KPI history")

    async def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        """The audit trail: who did what, when, why, with what outcome.

        Returns: the entries with ``seq > since_seq``, oldest first.

        Raises: Unreachable, TimedOut or AuthFailed as :meth:`snapshot` does; Unsupported when the backend
            keeps no audit trail (the default).
        """
        raise self._unsupported("show an audit trail")
