"""Config: defaults, a full example, one clear line per kind of mistake, the starter file, XDG paths."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from console.app import binding_contexts
from console.cli.node_choice import read_config
from console.core import paths
from console.core.config import (
    Config,
    ConfigError,
    NodeConfig,
    Threshold,
    Thresholds,
    check_config,
    load_config,
    starter_config,
    write_starter_config,
)
from console.keys import clashes, default_keymap, normalise_key, normalised_keymap, unknown_actions

FULL_EXAMPLE = """\
operator = "alice"                 # who the audit trail names; default: the OS user
theme = "fleetdeck-light"
refresh_s = 2.5
read_only = true

[[nodes]]
name = "local"
backend = "local"

[[nodes]]
name = "gpu-01"
backend = "http"
url = "https://gpu-01.example:8765"
token_env = "FLEETDECK_TOKEN_GPU01"
environment = "production"
ca_bundle = "certs/ca.pem"

[[nodes]]
name = "cluster"
backend = "ray"
url = "http://127.0.0.1:8265"
read_only = true
options = { namespace = "agents", poll = 3 }

[[nodes]]
name = "demo"
backend = "demo"
seed = 7
state_dir = "~/fleet-demo"

[thresholds]                       # [warning, critical]
gpu_temp_c = [75, 85]
gpu_mem_percent = [90, 97]
host_mem_percent = [85, 95]
heartbeat_stale_s = [15, 60]

[keys]
quit = "ctrl+q"
help = "?"
"""


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test may read the real user's config: point HOME and XDG at a scratch folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "FLEETDECK_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    return home


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.toml")
    assert config == Config()
    assert config.theme == "fleetdeck-dark"
    assert config.refresh_s == 1.0
    assert config.read_only is False
    assert config.nodes == ()
    assert config.keys == {}
    assert config.operator  # the OS user, or "operator"
    assert config.thresholds.gpu_temp_c == Threshold(80, 90)
    assert config.thresholds.error_log_rate_per_min == (10, 50)
    # The default location is read when no path is given, and it is absent here.
    assert load_config() == Config()


def test_full_example_parses(tmp_path: Path) -> None:
    path = _write(tmp_path, FULL_EXAMPLE)
    config = load_config(path)
    assert (config.operator, config.theme, config.refresh_s, config.read_only) == (
        "alice", "fleetdeck-light", 2.5, True,
    )  # fmt: skip
    assert [node.name for node in config.nodes] == ["local", "gpu-01", "cluster", "demo"]
    local, gpu, cluster, demo = config.nodes
    assert local == NodeConfig(name="local", backend="local")
    assert gpu.environment == "production" and gpu.token_env == "FLEETDECK_TOKEN_GPU01"
    assert gpu.ca_bundle == tmp_path / "certs" / "ca.pem"  # relative to the config file
    assert cluster.options == {"namespace": "agents", "poll": 3} and cluster.read_only
    assert demo.seed == 7
    assert demo.state_dir == Path.home() / "fleet-demo"
    assert config.thresholds.gpu_temp_c == (75, 85)
    warning, critical = config.thresholds.gpu_temp_c
    assert (warning, critical) == (75.0, 85.0)
    assert config.thresholds.agent_restarts == (10, 25)  # left out: default
    assert config.keys == {"quit": "ctrl+q", "help": "?"}  # as written: the core knows no key names
    assert read_config(path).keys == {"quit": "ctrl+q", "help": "question_mark"}  # for App.set_keymap
    assert check_config(config) == []


def test_config_is_immutable() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.theme = "other"  # type: ignore[misc]


@pytest.mark.parametrize(("text", "key", "problem"), [
    ('operator = "a"\ntheme = "x"\nrefresh_s 1\n', "line 3, column 11",
     "invalid TOML (Expected '=' after a key"),
    ("refresh_s = [1,\n", "end of document", "invalid TOML"),
    ('refresh_s = "fast"\n', "refresh_s", "expected a number, got a string"),
    ("refresh_s = 0\n", "refresh_s", "expected a number >= 0.1"),
    ("refresh_s = 7200\n", "refresh_s", "expected a number <= 3600"),
    ("read_only = 1\n", "read_only", "expected true or false, got an integer"),
    ('[[nodes]]\nname = "a"\nbackend = "local"\n'
     '[[nodes]]\nname = "b"\nbackend = "local"\nenvironment = "prod"\n',
     "nodes[1].environment", "expected one of dev, staging, production, got 'prod'"),
    ("refresh = 2\n", "refresh", "unknown key (did you mean refresh_s?)"),
    ('[[nodes]]\nname = "a"\nbackend = "local"\ntoken = "s3cret"\n', "nodes[0].token", "unknown key"),
    ("[thresholds]\ngpu_temp = [1, 2]\n", "thresholds.gpu_temp", "unknown key (did you mean gpu_temp_c?)"),
    ('[[nodes]]\nbackend = "local"\n', "nodes[0].name", "required, but missing"),
    ('[[nodes]]\nname = "a"\nbackend = "local"\n[[nodes]]\nname = "a"\nbackend = "demo"\n',
     "nodes[1].name", "duplicate node name 'a' (also nodes[0])"),
    ('[[nodes]]\nname = "gpu 01"\nbackend = "local"\n', "nodes[0].name", "not a valid node name"),
    ('[[nodes]]\nname = "a"\nbackend = "local"\n[[nodes]]\nname = "b"\nbackend = "http"\n',
     "nodes[1].url", "required for backend 'http'"),
    ('[[nodes]]\nname = "r"\nbackend = "ray"\n', "nodes[0].url", "required for backend 'ray'"),
    ('[[nodes]]\nname = "b"\nbackend = "http"\nurl = "gpu-01:8765"\n', "nodes[0].url", "expected an http://"),
    ('[[nodes]]\nname = "b"\nbackend = "local"\nstate_dir = 3\n', "nodes[0].state_dir", "expected a path"),
    ('[[nodes]]\nname = "b"\nbackend = "http"\nurl = "https://b"\ntoken_env = "t"\ntoken_file = "f"\n',
     "nodes[0]", "token_env and token_file are both set"),
    ('[nodes]\nname = "b"\n', "nodes", "expected an array, got a table"),
    ("[thresholds]\ngpu_temp_c = [95, 90]\n", "thresholds.gpu_temp_c", "warning 95 is above critical 90"),
    ("[thresholds]\ngpu_mem_percent = [90, 120]\n", "thresholds.gpu_mem_percent", "above 100 percent"),
    ('[thresholds]\ngpu_temp_c = [80, "hot"]\n', "thresholds.gpu_temp_c[1]",
     "expected a number, got a string"),
    ("[thresholds]\ngpu_temp_c = [80]\n", "thresholds.gpu_temp_c", "expected an array of length 2, got 1"),
    ("[thresholds]\nagent_restarts = [-1, 3]\n", "thresholds.agent_restarts[0]", "expected a number >= 0"),
    ('[keys]\nquit = "q"\nhelp = 3\n', "keys.help", "expected a string, got an integer"),
    ('[keys]\nquit = "ctlr+q"\n', "keys.quit", "'ctlr+q' is not a key"),
])  # fmt: skip
def test_each_error_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        read_config(path)  # as every command reads it: the file, then its [keys] in Textual's names
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message
    assert "\n" not in message
    assert (raised.value.path, raised.value.key) == (path, key)


def test_a_token_pasted_into_token_env_is_not_echoed(tmp_path: Path) -> None:
    secret = "sk-live-0123456789abcdef"
    path = _write(
        tmp_path, f'[[nodes]]\nname = "b"\nbackend = "http"\nurl = "https://b"\ntoken_env = "{secret}"\n'
    )
    with pytest.raises(ConfigError, match=r"nodes\[0\]\.token_env: expected the name") as raised:
        load_config(path)
    assert secret not in str(raised.value)


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)  # a directory
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'operator = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_fleetdeck_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, 'operator = "bob"\n')
    monkeypatch.setenv("FLEETDECK_CONFIG", str(path))
    assert paths.config_file() == path
    assert load_config().operator == "bob"
    # A path named on purpose that does not exist is a typo, not "use the defaults".
    monkeypatch.setenv("FLEETDECK_CONFIG", str(tmp_path / "typo.toml"))
    with pytest.raises(ConfigError, match="no such file"):
        load_config()


def test_a_path_the_user_named_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file") as raised:
        load_config(tmp_path / "typo.toml", missing_ok=False)
    assert str(raised.value).startswith(str(tmp_path / "typo.toml"))
    assert load_config(tmp_path / "typo.toml") == Config()  # the default: missing is fine


def test_xdg_environment_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    assert paths.config_dir() == isolated_home / ".config" / "fleetdeck"
    assert paths.state_dir() == isolated_home / ".local" / "state" / "fleetdeck"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert paths.config_dir() == tmp_path / "cfg" / "fleetdeck"
    assert paths.config_file() == tmp_path / "cfg" / "fleetdeck" / "config.toml"
    assert paths.user_themes_dir() == tmp_path / "cfg" / "fleetdeck" / "themes"
    assert paths.state_dir() == tmp_path / "state" / "fleetdeck"
    assert paths.default_node_state_dir() == tmp_path / "state" / "fleetdeck" / "node"
    # The XDG spec says a relative value is invalid and must be ignored.
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert paths.config_dir() == isolated_home / ".config" / "fleetdeck"
    # And load_config() reads from there.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    write_starter_config(paths.config_file())
    assert load_config().nodes[0].name == "local"


def test_starter_config_round_trips(tmp_path: Path) -> None:
    path = write_starter_config(tmp_path / "new" / "config.toml")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# fleetdeck config — see README\n")
    assert tomllib.loads(text) == starter_config()
    config = load_config(path)
    assert config.nodes == (NodeConfig(name="local", backend="local"),)
    assert config.thresholds == Thresholds()
    assert config.theme == "fleetdeck-dark"
    # Laid out like the docs: a [[nodes]] table the user can copy, one line per threshold pair.
    assert "\n[[nodes]]\n" in text
    assert "\ngpu_temp_c = [80, 90]\n" in text
    assert check_config(config) == []


def test_starter_config_refuses_to_overwrite(tmp_path: Path) -> None:
    path = _write(tmp_path, 'operator = "keep me"\n')
    with pytest.raises(ConfigError, match="already exists") as raised:
        write_starter_config(path)
    assert str(path) in str(raised.value)
    assert path.read_text(encoding="utf-8") == 'operator = "keep me"\n'
    write_starter_config(path, overwrite=True)
    assert load_config(path).nodes[0].name == "local"


def _key_problems(path: Path) -> list[str]:
    """What `fleetdeck config check` says of the file's [keys], by the rules the console applies."""
    config = read_config(path)
    contexts = binding_contexts()
    return unknown_actions(config, default_keymap(contexts)) + clashes(contexts, normalised_keymap(config))


def test_key_clash_names_both_actions_and_the_key(tmp_path: Path) -> None:
    problems = _key_problems(_write(tmp_path, '[keys]\ndispatch = "q"\n'))
    assert "key 'q' is bound to both 'dispatch' and 'quit' (node)" in problems


def test_key_clash_sees_through_spellings(tmp_path: Path) -> None:
    problems = _key_problems(_write(tmp_path, '[keys]\nfilter = "?"\n'))
    assert "key '?' is bound to both 'filter' and 'help' (node)" in problems


def test_rebinding_away_from_a_default_is_no_clash(tmp_path: Path) -> None:
    assert _key_problems(_write(tmp_path, '[keys]\nquit = "ctrl+q"\ndispatch = "q"\n')) == []
    assert default_keymap(binding_contexts())["help"] == "question_mark"  # the bindings are the defaults


def test_unknown_action_is_reported(tmp_path: Path) -> None:
    config = read_config(_write(tmp_path, '[keys]\nquitt = "x"\n'))
    assert unknown_actions(config, default_keymap(binding_contexts())) == [
        "keys.quitt: unknown action (did you mean quit?)"
    ]
    assert unknown_actions(config, {"quitt": "z"}) == []


def test_token_over_plain_http_is_reported(tmp_path: Path) -> None:
    text = (
        '[[nodes]]\nname = "far"\nbackend = "http"\nurl = "http://gpu-01.example:8765"\ntoken_env = "T"\n'
        '[[nodes]]\nname = "near"\nbackend = "http"\nurl = "http://127.0.0.1:8765"\ntoken_env = "T"\n'
    )
    problems = check_config(load_config(_write(tmp_path, text)))
    assert problems == ["nodes[0].url: the token for 'far' would cross the network unencrypted; use https://"]


@pytest.mark.parametrize(("key", "normalised"), [
    ("q", "q"), ("Q", "Q"), ("?", "question_mark"), ("question_mark", "question_mark"), ("/", "slash"),
    ("slash", "slash"), ("ctrl+p", "ctrl+p"), ("ctrl+/", "ctrl+slash"), ("escape", "escape"),
    ("f5", "f5"), ("shift+tab", "shift+tab"), ("colon", "colon"), ("solidus", "slash"),
    ("ctlr+p", None), ("nosuchkey", None), ("ctrl+", None), ("", None),
])  # fmt: skip
def test_key_names(key: str, normalised: str | None) -> None:
    assert normalise_key(key) == normalised
