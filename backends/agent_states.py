"""Which operator action an agent's state can take, written once.

The local backend enforces it (a refused action is a Conflict that changes nothing), and the console reads
the same table to show an action key as off, and to say why, before anything is sent to a node. A failed
agent is the case that matters most: pausing it must not turn a failure into a quiet "paused".
"""

from __future__ import annotations

#: the states each action is a no-op in, and the states it can act on; any other state is refused
ALREADY: dict[str, frozenset[str]] = {
    "pause": frozenset({"paused"}),
    "resume": frozenset({"running", "starting", "idle", "waiting"}),
    "stop": frozenset({"stopped", "stopping"}),
}
ACCEPTS: dict[str, frozenset[str]] = {
    "pause": frozenset({"starting", "running", "idle", "waiting", "unknown"}),
    "resume": frozenset({"paused"}),
    "stop": frozenset({"starting", "running", "idle", "waiting", "paused", "unknown"}),
}
REFUSAL = {
    "pause": "only a live agent can be paused",
    "resume": "resume continues a paused agent; start a stopped or failed one again with fleetdeck run",
    "stop": "it has already ended",
}


def state_refusal(action: str, agent_id: str, state: str, why: str | None = None) -> str | None:
    """Why ``action`` cannot act on an agent in ``state`` (neither a no-op nor accepted), or None.

    ``why`` is what the state came from (a failed agent's exit), kept in the answer so that the reason
    an operator tried to act on is never replaced by the refusal."""
    if state in ALREADY[action] or state in ACCEPTS[action]:
        return None
    cause = f" ({why})" if why and why != state else ""
    return f"agent {agent_id} is {state}{cause}; {REFUSAL[action]}"
