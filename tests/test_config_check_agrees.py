"""`fleetdeck config check` and the console judge ``[keys]`` by one set of rules, the ones Textual applies.

Through the real command line (``config init``, ``config check``) and the real console under Pilot: a key
set to its default is no clash, a rebinding that takes a key from another action is refused by both in the
same words, and the starter file with every example in use passes and starts the console.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.app import FleetDeckApp, binding_contexts
from console.core.config import load_config
from console.core.fleet_setup import configured_links
from console.keys import default_keymap
from console.screens.help import HelpScreen
from console.screens.node import NodeScreen
from console.snapshot import screen_text
from tests.conftest import make_frozen_demo_app_async, one_line_error

TOKEN_VAR = "FLEETDECK_TOKEN_GPU01"  # the starter file's example node reads its token from this


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def keys_in_force(app: FleetDeckApp, context: str) -> dict[str, str]:
    return {row.action_id: row.keys for row in app.key_help() if row.context == context}


def test_every_key_set_to_its_default_passes_the_check(fleetdeck, tmp_path: Path) -> None:
    defaults = default_keymap(binding_contexts())
    body = "[keys]\n" + "".join(f'{action} = "{keys}"\n' for action, keys in defaults.items())
    config = write(tmp_path, "defaults.toml", body)
    result = fleetdeck("--config", str(config), "config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{config}: ok"), result.stdout

    quit_only = write(tmp_path, "quit.toml", '[keys]\nquit = "q"\n')  # Help also closes on q, as ever
    result = fleetdeck("--config", str(quit_only), "config", "check")
    assert result.returncode == 0, result.stdout


async def test_a_rebinding_that_takes_space_from_mark_is_refused_by_check_and_console(
    fleetdeck, tmp_path: Path
) -> None:
    path = write(tmp_path, "space.toml", '[keys]\npause = "space"\n')
    result = fleetdeck("--config", str(path), "config", "check")
    assert result.returncode == 2
    said = [line.removeprefix(f"{path}: keys: ") for line in result.stdout.splitlines()]
    assert len(said) == 2 and all(
        "'space'" in line and "'pause'" in line and "'mark'" in line for line in said
    )
    assert {line.rpartition(" ")[2] for line in said} == {"(all-agents)", "(node)"}

    app = await make_frozen_demo_app_async(nodes=1, agents=6, config=load_config(path))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, NodeScreen)
        toasts = [str(n.message) for n in app._notifications]
        assert any(all(line in toast for line in said) for toast in toasts), toasts
        assert any("not applied" in toast and "pause" in toast for toast in toasts), toasts
        # The console kept what it refused: space still marks, p still pauses.
        assert keys_in_force(app, "node")["mark"] == "space" and keys_in_force(app, "node")["pause"] == "p"
        assert "✓ " not in screen_text(app)
        await pilot.press("space")
        await pilot.pause()
        assert "✓ " in screen_text(app), "space marks the agent under the cursor"


async def test_the_starter_config_with_every_example_in_use_passes_and_starts_the_console(
    fleetdeck, cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fleetdeck("config", "init").returncode == 0
    starter = (tmp_path / "config" / "fleetdeck" / "config.toml").read_text(encoding="utf-8")
    examples = [line for line in starter.splitlines() if line.startswith("#   ")]
    assert any(line.startswith("#   pause =") for line in examples), "the file shows how to rebind a key"
    in_use = "\n".join(
        line.replace("#   ", "    ", 1) if line in examples else line for line in starter.splitlines()
    )
    path = write(tmp_path, "in-use.toml", in_use + "\n")

    # Without its token the example node cannot be set up: the check says so, as the console does.
    refused = fleetdeck("--config", str(path), "config", "check")
    assert refused.returncode == 2
    assert refused.stdout.startswith(f"{path}: nodes[1]: ") and f"${TOKEN_VAR}" in refused.stdout
    console = fleetdeck("--config", str(path))
    assert console.returncode == 2 and f"${TOKEN_VAR}" in one_line_error(console)

    cli_env[TOKEN_VAR] = "example-token"
    passed = fleetdeck("--config", str(path), "config", "check")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "ok · 2 node(s)" in passed.stdout

    monkeypatch.setenv(TOKEN_VAR, "example-token")
    config = load_config(path)
    # frozen: no polling, so the example node is never dialled; the keymap is applied all the same
    app = FleetDeckApp(configured_links(config, clock=time.time), config=config, clock=time.time, frozen=True)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.pause()
        assert not [n for n in app._notifications if n.title == "keys"]
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        node_keys = keys_in_force(app, "node")
        assert (node_keys["pause"], node_keys["filter"], keys_in_force(app, "global")["quit"]) == (
            "P",
            "/, ctrl+f",
            "q",
        )
        assert "/, ctrl+f" in screen_text(app)
