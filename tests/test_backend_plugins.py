"""Backends are plugins in full: found by entry point, their config keys declared as Options structs, and
every ``[[nodes]]`` entry checked against the struct of the backend it names."""

from __future__ import annotations

import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import msgspec
import pytest

from backends.base import Backend
from backends.demo import DemoBackend
from backends.plugin import BackendOptions, NodeSettings, NoOptions
from backends.registry import BUILTIN_BACKENDS, ENTRY_POINT_GROUP, resolve
from console.core.config import ConfigError, NodeConfig, check_config, load_config
from console.core.fleet_setup import configured_links

BUILTINS = sorted(BUILTIN_BACKENDS)
# A key each built-in takes that none of the others' entries may carry.
OWN_KEY = {"demo": ("seed", "3"), "local": ("state_dir", '"node"'), "http": ("url", '"http://h:1"')}
URL = {"http": 'url = "https://gpu-01.example:8765"\n', "ray": 'url = "http://127.0.0.1:8265"\n'}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text))
    return raised.value


def test_every_builtin_is_registered_by_fleetdecks_own_entry_point() -> None:
    ours = {
        ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.dist and ep.dist.name == "fleetdeck"
    }
    assert {name: ep.value for name, ep in ours.items()} == BUILTIN_BACKENDS
    for name, ep in ours.items():
        assert ep.load() is resolve(name)


@pytest.mark.parametrize("name", BUILTINS)
def test_each_builtin_declares_its_keys_as_a_frozen_strict_struct(name: str) -> None:
    backend = resolve(name)
    options = backend.Options
    assert issubclass(backend, Backend) and backend.name == name
    assert issubclass(options, BackendOptions) and options is not NoOptions
    assert options.__struct_config__.frozen and options.__struct_config__.forbid_unknown_fields
    keys = {field.name for field in msgspec.structs.fields(options)}
    assert keys and keys.isdisjoint({"name", "backend", "environment", "read_only"})


@pytest.mark.parametrize("name", BUILTINS)
def test_a_key_its_backend_does_not_take_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    for owner, (key, value) in OWN_KEY.items():
        if owner == name or key in {f.name for f in msgspec.structs.fields(resolve(name).Options)}:
            continue
        error = refusal(
            tmp_path, f'[[nodes]]\nname = "n"\nbackend = "{name}"\n{URL.get(name, "")}{key} = {value}\n'
        )
        assert (error.key, error.problem) == (f"nodes[0].{key}", "unknown key")


def test_a_misspelt_key_is_refused_with_the_backends_own_key_suggested(tmp_path: Path) -> None:
    error = refusal(tmp_path, '[[nodes]]\nname = "g"\nbackend = "http"\nurl = "https://g"\ntoken_evn = "T"\n')
    assert (error.key, error.problem) == ("nodes[0].token_evn", "unknown key (did you mean token_env?)")
    error = refusal(tmp_path, '[[nodes]]\nname = "g"\nbackend = "demo"\nenviroment = "dev"\n')
    assert error.problem == "unknown key (did you mean environment?)"  # a common key is suggested too


@pytest.mark.parametrize("name", ["http", "ray"])
def test_a_missing_url_is_refused_as_it_always_was(tmp_path: Path, name: str) -> None:
    error = refusal(tmp_path, f'[[nodes]]\nname = "n"\nbackend = "{name}"\ntoken_env = "T"\n')
    assert str(error) == f"{tmp_path / 'config.toml'}: nodes[0].url: required for backend {name!r}"


def test_an_unknown_backend_names_the_known_ones(tmp_path: Path) -> None:
    error = refusal(
        tmp_path, '[[nodes]]\nname = "a"\nbackend = "local"\n[[nodes]]\nname = "b"\nbackend = "k8s"\n'
    )
    assert error.key == "nodes[1].backend"
    assert error.problem == "unknown backend 'k8s' (known: demo, http, local, ray)"


def test_of_two_mistakes_the_one_written_first_is_reported(tmp_path: Path) -> None:
    bad_node = '[[nodes]]\nname = "a"\nbackend = "local"\nurl = "http://h:1"\n'
    bad_threshold = "[thresholds]\ngpu_temp_c = [95, 90, 1]\n"
    assert refusal(tmp_path, bad_node + bad_threshold).key == "nodes[0].url"
    assert refusal(tmp_path, bad_threshold + bad_node).key == "thresholds.gpu_temp_c"


def test_the_options_say_what_a_type_cannot(tmp_path: Path) -> None:
    error = refusal(tmp_path, '[[nodes]]\nname = "r"\nbackend = "ray"\nurl = "dashboard:8265"\n')
    assert (error.key, error.problem) == (
        "nodes[0].url",
        "expected an http:// or https:// URL, got 'dashboard:8265'",
    )
    config = load_config(write(tmp_path, '[[nodes]]\nname = "r"\nbackend = "ray"\nurl = "http://ray.example:8265"\n'
                                         'token_env = "RAY_TOKEN"\n'))  # fmt: skip
    assert check_config(config) == [
        "nodes[0].url: the token for 'r' would cross the network unencrypted; use https://"
    ]


def test_an_entry_reads_as_the_typed_settings_its_backend_is_handed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write(tmp_path, '[[nodes]]\nname = "lab"\nbackend = "demo"\nseed = 3\n'
                                         'environment = "staging"\noptions = { agents = 4 }\n'))  # fmt: skip
    (node,) = config.nodes
    assert isinstance(node, NodeSettings) and isinstance(node.backend_options, resolve("demo").Options)
    assert (node.name, node.backend, node.environment, node.seed, node.options) == (
        "lab", "demo", "staging", 3, {"agents": 4}
    )  # fmt: skip
    (link,) = configured_links(config, clock=time.time)
    assert isinstance(link.backend, DemoBackend)
    assert (link.backend.info.name, link.backend.info.environment, len(link.backend.world.roster)) == (
        "lab", "staging", 4
    )  # fmt: skip
    with pytest.raises(AttributeError, match="the demo backend has no key 'url'"):
        node.url  # noqa: B018


def test_an_entry_built_in_code_takes_its_backends_keys_as_keywords() -> None:
    node = NodeConfig(name="gpu-01", backend="http", url="https://gpu-01.example:8765", token_env="T")
    assert node.backend_options == resolve("http").Options(url="https://gpu-01.example:8765", token_env="T")
    assert node.url == "https://gpu-01.example:8765"
    with pytest.raises(TypeError):
        NodeConfig(name="here", backend="local", url="http://h:1")


def test_checking_a_config_imports_only_the_backends_it_names(tmp_path: Path) -> None:
    path = write(tmp_path, '[[nodes]]\nname = "a"\nbackend = "demo"\n')
    script = (
        "import sys; from pathlib import Path; from console.core.config import load_config; "
        f"load_config(Path({str(path)!r})); "
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('backends.')}))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(eval(result.stdout))
    assert "demo" in loaded and not loaded & {"http", "local", "ray", "node_server"}
