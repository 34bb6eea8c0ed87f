"""The read-only gate every local action passes first: refused, audited as denied, nothing done."""

from __future__ import annotations

from typing import NoReturn

from backends.errors import Forbidden

from .store import Store


def deny(
    store: Store,
    node: str,
    operator: str,
    action: str,
    target: str | None,
    reason: str | None,
    **params: object,
) -> NoReturn:
    store.audit(
        operator, action, target, outcome="denied", params=params, reason=reason, detail="node is read-only"
    )
    raise Forbidden(f"node {node} is read-only")
