"""Find backends by name, through the ``fleetdeck.backends`` entry-point group: a new backend is a package
that registers one, not a patch. fleetdeck registers its own four the same way, in its pyproject.toml::

    [project.entry-points."fleetdeck.backends"]
    mycluster = "mypkg.backend:MyClusterBackend"

Nothing is imported until a name is resolved, and resolving one imports that backend alone.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from .errors import Invalid

if TYPE_CHECKING:
    from .base import Backend

ENTRY_POINT_GROUP = "fleetdeck.backends"

# The built-ins' names are reserved, and this table is why a name stays reserved when a package registers
# it too: the http and ray backends are handed tokens, so no other package may answer to their names. It
# also keeps a checkout that was never installed (no entry points at all) running its built-ins. A test
# holds it equal to the entry points pyproject.toml registers.
BUILTIN_BACKENDS: dict[str, str] = {
    "demo": "backends.demo:DemoBackend",
    "local": "backends.local.backend:LocalBackend",
    "http": "backends.http:HttpBackend",
    "ray": "backends.ray:RayBackend",
}


def available() -> dict[str, str]:
    """Every backend name mapped to where it comes from (an import path)."""
    found: dict[str, str] = {}
    for ep in _entry_points():
        if BUILTIN_BACKENDS.get(ep.name, ep.value) == ep.value:  # a built-in's name keeps its built-in
            found.setdefault(ep.name, ep.value)
    for name, target in BUILTIN_BACKENDS.items():
        found.setdefault(name, target)
    return found


def resolve(name: str) -> type[Backend]:
    """The Backend class for ``name``; :class:`Invalid` with the known names if there is none, or if it
    cannot be imported."""
    known = available()
    if name not in known:
        raise Invalid(f"unknown backend {name!r} (known: {', '.join(sorted(known))})")
    return _load(name, known[name])


def _entry_points() -> tuple[EntryPoint, ...]:
    return _scan(entry_points)


@functools.cache
def _scan(source: Callable[..., Iterable[EntryPoint]]) -> tuple[EntryPoint, ...]:
    # Reading every installed package's metadata takes ~10 ms, and a config resolves each node's backend
    # twice (to validate the entry, then to build it); the packages do not change under a running process.
    return tuple(source(group=ENTRY_POINT_GROUP))


def _load(name: str, target: str) -> type[Backend]:
    from .base import Backend

    module_name, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise Invalid(f"backend {name!r} could not be loaded from {target!r}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise Invalid(f"backend {name!r} at {target!r} is not a fleetdeck Backend class")
    return obj
