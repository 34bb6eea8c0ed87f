"""The key map: every binding has an id (its action name), so config ``[keys]`` can rebind it, and the Help
screen lists the keys actually in force rather than the defaults."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType


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


def clashes(contexts: Mapping[str, Iterable[BindingType]], keymap: Mapping[str, str]) -> list[str]:
    """Two actions of one context (or a screen action and a global one) bound to the same key.

    A screen binding that shadows a global key by default is deliberate (Help closes on `?` and `q`), so a
    screen-over-global clash counts only when the keymap rebound one of the two actions.
    """
    global_rows = [r for r in key_help({"global": contexts.get("global", ())}, keymap)]
    problems: list[str] = []
    for context, declared in contexts.items():
        rows = key_help({context: declared}, keymap)
        if context != "global":
            rows += global_rows
        seen: dict[str, KeyHelp] = {}
        for row in rows:
            for key in row.keys.split(", "):
                other = seen.get(key)
                if other is not None and other.action_id != row.action_id:
                    shadows = other.context != row.context
                    if not shadows or other.action_id in keymap or row.action_id in keymap:
                        pair = f"{other.action_id!r} and {row.action_id!r}"
                        problems.append(f"key {key!r} is bound to both {pair} ({context})")
                seen[key] = row
    return sorted(set(problems))


def default_keymap(contexts: Mapping[str, Iterable[BindingType]]) -> dict[str, str]:
    """Binding id -> default key(s), for ``fleetdeck config check`` and the config docs."""
    keymap: dict[str, str] = {}
    for declared in contexts.values():
        for binding in _bindings(declared):
            if binding.id is not None:
                keymap.setdefault(binding.id, binding.key)
    return keymap
