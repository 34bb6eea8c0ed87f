"""Which agent an OTLP record belongs to, and the labels it gives that agent (docs/otel.md, "Agents").

An agent is named, first that applies:

1. a Claude Code session (``service.name`` "claude-code" with a ``session.id``): ``claude-<first 8 of the
   session id>``, the same agent ``fleetdeck hook claude`` reports, so its hooks and its telemetry meet;
2. a Codex session (``service.name`` starting "codex" with a ``conversation.id``): ``codex-<first 8>``;
3. ``gen_ai.agent.name`` (else ``gen_ai.agent.id``) of the record, else the resource's ``service.name``;
   with ``service.instance.id``, ``-<first 8 of it>`` after, so two processes of one service are two agents.

Attributes arrive as OTel ``AnyValue``s; only scalars become labels, each bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Attributes = dict[str, Any]

MAX_ATTRIBUTES = 64  # read per resource, record or data point: more are left out
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256
LABEL_CHARS = 64
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_SHORT = re.compile(r"[^A-Za-z0-9]")
_UNKNOWN_SERVICE = "unknown_service"


def attributes(key_values: Sequence[Any]) -> Attributes:
    """OTel KeyValues as a dict of plain values, bounded in count, key and value length."""
    # The hot loop of ingest (every span, point and record): strings, the common case, are read inline.
    out: Attributes = {}
    for kv in key_values[: MAX_ATTRIBUTES * 2]:  # room for empty keys; the count is bounded below
        key = kv.key
        if not key:
            continue
        if len(key) > MAX_KEY_CHARS:
            key = key[:MAX_KEY_CHARS]
        value = kv.value
        which = value.WhichOneof("value")
        if which == "string_value":
            found: Any = value.string_value
            if len(found) > MAX_VALUE_CHARS:
                found = found[: MAX_VALUE_CHARS - 1] + "…"
        elif which == "int_value":
            found = value.int_value
        else:
            found = plain(value)
        out[key] = found
        if len(out) >= MAX_ATTRIBUTES:
            break
    return out


def plain(value: Any, depth: int = 0) -> Any:
    """One AnyValue as str, int, float, bool or None; arrays and maps as short text."""
    which = value.WhichOneof("value")
    if which in ("string_value",):
        text: str = value.string_value
        return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
    if which in ("int_value", "double_value", "bool_value"):
        return getattr(value, which)
    if which == "bytes_value":
        return value.bytes_value[:64].hex()
    if which == "array_value" and depth < 2:
        items = ", ".join(str(plain(item, depth + 1)) for item in value.array_value.values[:16])
        return f"[{items}]"[:MAX_VALUE_CHARS]
    if which == "kvlist_value" and depth < 2:
        pairs = ", ".join(f"{kv.key}={plain(kv.value, depth + 1)}" for kv in value.kvlist_value.values[:16])
        return f"{{{pairs}}}"[:MAX_VALUE_CHARS]
    return None


def text(attrs: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` holding a non-empty scalar, as one bounded line."""
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "" and not isinstance(value, bool):
            line = " ".join(str(value).split())
            if line:
                return line[:LABEL_CHARS]
    return None


def _short(ident: str) -> str:
    return _SHORT.sub("", ident)[:8]


def _name(raw: str) -> str:
    name = _NAME_CHARS.sub("-", raw).strip("-.")[:64].strip("-.")
    return name or "otel"


class ResourceView:
    """A resource's attributes read once: what every record under it shares."""

    __slots__ = ("_agents", "_overrides", "attrs", "kind", "labels", "service")

    def __init__(self, attrs: Attributes) -> None:
        self.attrs = attrs
        service = text(attrs, "service.name")
        if service is not None and service.startswith(_UNKNOWN_SERVICE):
            service = None  # the SDK's placeholder says nothing: an agent name or "otel" does better
        self.service = service
        self.kind = (
            "claude-code"
            if service == "claude-code"
            else "codex"
            if service and service.startswith("codex")
            else "otel"
        )
        labels = {"source": self.kind}
        if service:
            labels["service"] = service
        instance = text(attrs, "service.instance.id")
        if instance:
            labels["instance"] = instance
        language, version = text(attrs, "telemetry.sdk.language"), text(attrs, "telemetry.sdk.version")
        if language:
            labels["sdk"] = f"{language} {version}" if version else language
        user = text(attrs, "user.id", "enduser.id", "user.account_uuid")
        if user:
            labels["user"] = user
        self.labels = labels
        # the record attributes that can name another agent than the resource's: the answer is the same
        # for every record that has the same values of these, so it is worked out once per such set
        self._overrides: tuple[str, ...] = (
            ("session.id",)
            if self.kind == "claude-code"
            else ("conversation.id", "session.id", "thread.id")
            if self.kind == "codex"
            else ()
        ) + ("gen_ai.agent.name", "gen_ai.agent.id")
        self._agents: dict[tuple[Any, ...], tuple[str, dict[str, str]]] = {}

    def agent_of(self, record: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        """The agent id of a record under this resource (its own attributes first), and its labels."""
        key = tuple(map(record.get, self._overrides))
        known = self._agents.get(key)
        if known is None:
            known = self._agents[key] = self._name_agent(record)
        return known

    def _name_agent(self, record: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
        labels = self.labels
        merged = _Merged(record, self.attrs)
        if self.kind == "claude-code":
            session = text(merged, "session.id")
            if session and _short(session):
                return f"claude-{_short(session)}", {**labels, "session_id": session}
        elif self.kind == "codex":
            session = text(merged, "conversation.id", "session.id", "thread.id")
            if session and _short(session):
                return f"codex-{_short(session)}", {**labels, "session_id": session}
        named = text(merged, "gen_ai.agent.name", "gen_ai.agent.id")
        base = _name(named or self.service or "otel")
        instance = labels.get("instance")
        if instance and _short(instance):
            base = f"{base[:55]}-{_short(instance)}"
        return base, labels


class _Merged(Mapping[str, Any]):
    """A record's attributes over its resource's, without copying either."""

    __slots__ = ("over", "under")

    def __init__(self, over: Mapping[str, Any], under: Mapping[str, Any]) -> None:
        self.over, self.under = over, under

    def __getitem__(self, key: str) -> Any:
        if key in self.over:
            return self.over[key]
        return self.under[key]

    def get(self, key: str, default: Any = None) -> Any:
        value = self.over.get(key)
        return value if value is not None else self.under.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter({**self.under, **self.over})

    def __len__(self) -> int:
        return len({**self.under, **self.over})
