"""What a backend declares about its configuration, and what it is handed when one of its nodes is built.

A config's ``[[nodes]]`` entry has two parts. The keys every node has (``name``, ``backend``,
``environment``, ``read_only``) are the console's. Every other key belongs to the backend the entry
names, which declares them as data: a msgspec Struct, the class's ``Options``, subclassing
:class:`BackendOptions`. The config validates the rest of the entry against that struct (types, required
keys, unknown keys, each error naming ``nodes[N].key``), then asks the validated options for what a type
cannot express (:meth:`BackendOptions.problems`) and, for ``fleetdeck config check``, for what works but
deserves a word (:meth:`BackendOptions.warnings`).

When the console builds the node it hands the backend's ``from_config`` a :class:`NodeSettings`: the
common part and the validated options together, so a backend reads typed values, never a raw table.

Nothing here imports the console: a third-party backend depends on ``backends`` alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from .model import Environment

#: The config's ``[thresholds]``: each name (``heartbeat_stale_s``, ``error_log_rate_per_min``, ...) to its
#: ``(warning, critical)`` pair, for a backend that judges its agents' health itself.
Thresholds = Mapping[str, tuple[float, float]]

#: A problem with one key of an entry: ``(key, words)``; the key is None for the entry as a whole.
Problem = tuple[str | None, str]


class BackendOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every backend's ``Options``: the keys of a ``[[nodes]]`` entry beyond the common ones.

    Declare each key as a field. A field without a default is a key the entry must have (the config says
    ``nodes[N].url: required for backend 'http'``); a key the struct has no field for is refused
    (``nodes[N].token: unknown key``). A ``Path`` field read from a file is taken relative to the config
    file's folder, with ``~`` expanded. Subclasses repeat ``frozen=True, kw_only=True,
    forbid_unknown_fields=True``: msgspec does not inherit ``kw_only`` and type checkers do not see the
    others inherited.

    Options built in code (``MyOptions(path=...)`` in a test) are not validated, as no msgspec Struct built
    in code is; ``from_config`` must still refuse a value it cannot use, with
    :class:`~backends.errors.Invalid`.
    """

    def problems(self) -> Iterator[Problem]:
        """Each mistake the field types cannot express (a URL with no host, two keys that exclude each
        other), as ``(key, words)``. The config refuses the entry with the first one."""
        return iter(())

    def warnings(self, node: str) -> Iterator[Problem]:
        """What works but an operator should hear about on node ``node`` (a token sent over plain http),
        as ``(key, words)``; ``fleetdeck config check`` prints each one and the console starts anyway."""
        return iter(())


class NoOptions(BackendOptions, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The options of a backend that takes no key beyond the common ones."""


OptionsT = TypeVar("OptionsT", bound=BackendOptions, covariant=True)


@dataclass(frozen=True, kw_only=True)
class NodeSettings(Generic[OptionsT]):
    """One configured node, as its backend's ``from_config`` receives it.

    ``name`` is the node's name in the config (one plain word, unique in the fleet), ``environment``
    how careful the console is with it, ``read_only`` whether the config turned its actions off, and
    ``backend_options`` the rest of its entry, an instance of the backend's ``Options``.
    """

    name: str
    backend_options: OptionsT
    environment: Environment = "dev"
    read_only: bool = False
