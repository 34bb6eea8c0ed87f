"""The key map: every binding has an id (its action name), so config ``[keys]`` can rebind it, and the Help
screen lists the keys actually in force rather than the defaults.

The bindings are the one source of the defaults (``default_keymap``); the config's ``[keys]`` table is
checked here, in Textual's key vocabulary (``checked_keys``, ``unknown_actions``, ``clashes``), since the
config loader in console/core knows nothing of Textual.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
from textual.binding import Binding, BindingsMap, BindingType
from textual.keys import REPLACED_KEYS, Keys, _character_to_key, key_to_character

from console.core.config import Config, ConfigError

# What Textual has no public name for: a printable character's key name ("?" -> "question_mark").
TEXTUAL_PRIVATE_PARTS = ("textual.keys._character_to_key",)
_MODIFIERS: Final = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})


@dataclass(frozen=True)
class KeyHelp:
    context: str
    action_id: str
    keys: str
    description: str


def _bindings(declared: Iterable[BindingType]) -> list[Binding]:
    out: list[Binding] = []
    for item in declared:
        if isinstance(item, Binding):
            out.append(item)
        elif len(item) >= 2:
            out.append(Binding(*item))
    return out


def key_display(key: str) -> str:
    names = {"question_mark": "?", "slash": "/", "colon": ":", "escape": "esc", "enter": "enter"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def key_help(contexts: Mapping[str, Iterable[BindingType]], keymap: Mapping[str, str]) -> list[KeyHelp]:
    """One row per binding with an id, the keymap's override applied."""
    rows: list[KeyHelp] = []
    for context, declared in contexts.items():
        for binding in _bindings(declared):
            if binding.id is None:
                continue
            key = keymap.get(binding.id, binding.key)
            description = binding.tooltip or binding.description or binding.action
            rows.append(KeyHelp(context, binding.id, key_display(key), description))
    return rows


# A panel's bindings sit in front of its screen's while it has focus: the screens each panel lives in.
PANELS_IN: Mapping[str, tuple[str, ...]] = {"attention": ("fleet", "node")}


@dataclass(frozen=True)
class Clash:
    """``key`` reaches ``winner``, never ``loser``, in ``context``; ``rebound`` names which of the two the
    keymap moved away from its default (a clash between two defaults is the layout's own choice)."""

    key: str
    winner: str
    loser: str
    context: str
    rebound: frozenset[str]

    def __str__(self) -> str:
        pair = f"{self.winner!r} and {self.loser!r}"
        return f"key {key_display(self.key)!r} is bound to both {pair} ({self.context})"


def _name(binding: Binding) -> str:
    return binding.id or binding.action


def _key_set(spec: str) -> frozenset[str]:
    return frozenset(k.strip() for k in spec.split(",") if k.strip())


def _namespace(declared: Iterable[BindingType], keymap: Mapping[str, str]) -> BindingsMap:
    """A screen's (or panel's) bindings with the keymap applied by Textual itself, as the console does."""
    bindings = BindingsMap(_bindings(declared))
    if keymap:
        bindings.apply_keymap(keymap)
    return bindings


def find_clashes(
    contexts: Mapping[str, Iterable[BindingType]],
    keymap: Mapping[str, str],
    panels_in: Mapping[str, tuple[str, ...]] = PANELS_IN,
) -> list[Clash]:
    """Every key that, with ``keymap`` applied the way the console applies it, reaches one action where
    another was bound to it too.

    Textual applies a keymap per screen: a rebinding takes its key from whatever held it there (which
    then has lost it), and of two bindings left on one key the first runs. A key is then looked up from
    the focused panel to its screen to the app, the first binding found winning (a priority one first).
    A panel or screen binding that shadows an outer one by default is deliberate (Help closes on `q`), so
    a shadow counts only when the keymap moved one of the two; setting a key to its default moves nothing.
    """
    defaults: dict[str, frozenset[str]] = {}
    for declared in contexts.values():
        for binding in _bindings(declared):
            if binding.id is not None:
                defaults.setdefault(binding.id, _key_set(binding.key))
    rebound = frozenset(
        action for action, spec in keymap.items() if action in defaults and _key_set(spec) != defaults[action]
    )
    maps = {name: _namespace(declared, keymap) for name, declared in contexts.items()}
    found: list[Clash] = []

    def clash(key: str, winner: Binding, loser: Binding, context: str, always: bool) -> None:
        moved = frozenset(b.id for b in (winner, loser) if b.id in rebound)
        if _name(winner) != _name(loser) and (always or moved):
            found.append(Clash(key, _name(winner), _name(loser), context, moved))

    for context, declared in contexts.items():
        here = maps[context]
        for key, on_key in here.key_to_bindings.items():
            for later in on_key[1:]:
                clash(key, on_key[0], later, context, always=True)
        for binding in _bindings(declared):  # a key the keymap took away from a binding that kept it
            spec = keymap.get(binding.id, binding.key) if binding.id is not None else binding.key
            wanted = _key_set(spec)
            for key in sorted(wanted):
                holders = here.key_to_bindings.get(key, [])
                if holders and all(_name(b) != _name(binding) for b in holders):
                    clash(key, holders[0], binding, context, always=True)

    def chains(context: str) -> list[list[str]]:
        outer = [[context, screen] for screen in panels_in.get(context, ())] or [[context]]
        return [[*chain, "global"] for chain in outer] if context != "global" else [["global"]]

    for context in contexts:
        for chain in chains(context):
            seen: dict[str, Binding] = {}
            for name in chain:
                for key, on_key in maps.get(name, BindingsMap()).key_to_bindings.items():
                    inner = seen.get(key)
                    if inner is None:
                        seen[key] = on_key[0]
                    elif on_key[0].priority and not inner.priority:
                        clash(key, on_key[0], inner, context, always=False)
                    else:
                        clash(key, inner, on_key[0], context, always=False)
    unique = {(c.key, c.winner, c.loser, c.context): c for c in found}
    return [unique[k] for k in sorted(unique)]


def clashes(contexts: Mapping[str, Iterable[BindingType]], keymap: Mapping[str, str]) -> list[str]:
    """One line per clash (see find_clashes), for ``fleetdeck config check`` and the console alike."""
    return sorted({str(c) for c in find_clashes(contexts, keymap)})


def keymap_in_force(
    contexts: Mapping[str, Iterable[BindingType]], keymap: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The part of ``keymap`` the console applies, and one line per rebinding it leaves out.

    A rebinding that clashes is left out (its action keeps its default key), rather than let it silently
    take a key from another action; leaving one out can make another clash, so this repeats until none does.
    """
    applied = dict(keymap)
    lines: set[str] = set()
    while True:
        found = find_clashes(contexts, applied)
        culprits = {action for c in found for action in c.rebound} & applied.keys()
        if not culprits:
            break
        lines.update(str(c) for c in found if c.rebound & culprits)
        for action in culprits:
            del applied[action]
    left_out = sorted(keymap.keys() - applied.keys())
    if not left_out:
        return applied, []
    return applied, [*sorted(lines), f"not applied, so they keep their default keys: {', '.join(left_out)}"]


def default_keymap(contexts: Mapping[str, Iterable[BindingType]]) -> dict[str, str]:
    """Binding id -> default key(s), for ``fleetdeck config check`` and the config docs."""
    keymap: dict[str, str] = {}
    for declared in contexts.values():
        for binding in _bindings(declared):
            if binding.id is not None:
                keymap.setdefault(binding.id, binding.key)
    return keymap


# --- the config's [keys] table -----------------------------------------------------------------------------


@functools.cache
def _named_keys() -> frozenset[str]:
    return frozenset(key.value for key in Keys if "+" not in key.value and not key.value.startswith("<"))


def normalise_key(key: str) -> str | None:
    """One key in Textual's long form ("?" -> "question_mark", "ctrl+/" -> "ctrl+slash"), or None."""
    key = key.strip()
    if len(key) == 1:
        return _character_to_key(key)
    *modifiers, base = key.split("+")
    if any(modifier not in _MODIFIERS for modifier in modifiers) or not base:
        return None
    if base not in _named_keys():
        character = base if len(base) == 1 else key_to_character(REPLACED_KEYS.get(base, base))
        if character is None or len(character) != 1 or not character.isprintable():
            return None
        base = _character_to_key(character)
    return "+".join([*modifiers, base])


def normalise_keys(spec: str) -> str | None:
    """A comma-separated key list as Textual's BINDINGS and keymaps take it, normalised; None if bad."""
    keys = [normalise_key(key) for key in spec.split(",")]
    return None if not keys or None in keys else ",".join(k for k in keys if k)


def normalised_keymap(config: Config) -> dict[str, str]:
    """``[keys]`` in Textual's long key names, ready for App.set_keymap()."""
    return {action: normalise_keys(spec) or spec for action, spec in config.keys.items()}


def checked_keys(config: Config, path: Path) -> Config:
    """``config`` with its ``[keys]`` in Textual's long names; a ConfigError (one line naming ``path`` and
    the key) for the first one that is not a key, as for any other bad value in the file."""
    for action, spec in config.keys.items():
        if normalise_keys(spec) is None:
            problem = f"{spec!r} is not a key (use Textual key names such as q, ctrl+p, question_mark, slash)"
            raise ConfigError(path, problem, f"keys.{action}")
    return msgspec.structs.replace(config, keys=normalised_keymap(config))


def unknown_actions(config: Config, defaults: Mapping[str, str]) -> list[str]:
    """One line per ``[keys]`` entry that names no binding of ``defaults`` (binding id -> keys)."""
    problems = []
    for action in config.keys:
        if action not in defaults:
            close = difflib.get_close_matches(action, list(defaults), n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(defaults))}"
            problems.append(f"keys.{action}: unknown action ({hint})")
    return problems
