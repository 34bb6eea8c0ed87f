"""Find backends by name: the built-in ones, plus any package that registers one under the
``fleetdeck.backends`` entry-point group, so a new backend is a package, not a patch::

    [project.entry-points."fleetdeck.backends"]
    mycluster = "mypkg.backend:MyClusterBackend"
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from .errors import Invalid

if TYPE_CHECKING:
    from .base import Backend

ENTRY_POINT_GROUP = "fleetdeck.backends"

# Built-ins are named by import path so that picking one backend never imports the others.
BUILTIN_BACKENDS: dict[str, str] = {
    "demo": "backends.demo:DemoBackend",
    "local": "backends.local.backend:LocalBackend",
    "http": "backends.http:HttpBackend",
    "ray": "backends.ray:RayBackend",
}


def available() -> dict[str, str]:
    """Every backend name mapped to where it comes from (an import path)."""
    found = dict(BUILTIN_BACKENDS)
    for ep in _entry_points():
        found.setdefault(ep.name, ep.value)
    return found


def resolve(name: str) -> type[Backend]:
    """The Backend class for ``name``; :class:`Invalid` with the known names if there is none."""
    if name in BUILTIN_BACKENDS:
        return _load(name, BUILTIN_BACKENDS[name])
    for ep in _entry_points():
        if ep.name == name:
            return _load(name, ep.value)
    known = ", ".join(sorted(available()))
    raise Invalid(f"unknown backend {name!r} (known: {known})")


def _entry_points() -> tuple[EntryPoint, ...]:
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


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
