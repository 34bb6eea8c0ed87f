"""The user's config file (DESIGN.md §6): immutable structs, loading, and one-line errors.

msgspec checks the shape (types, enums, ranges, unknown keys); `_post_check` then checks what
depends on several values (unique node names, warning <= critical). A `[[nodes]]` entry is checked in
two parts: the keys every node has here, the rest against the Options struct of the backend it names
(`backends.plugin`), which also says what a type cannot (a url with no host). Any problem becomes a
ConfigError whose str() is one line naming the file, the key and the problem, which the CLI prints as
is, never as a traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import getpass
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Final, NamedTuple, get_args, get_origin, get_type_hints

import msgspec
import tomli_w

from backends.errors import Invalid
from backends.model import Environment, KpiName
from backends.plugin import BackendOptions, NodeSettings
from backends.registry import resolve
from console.core import paths
from console.core.kpi_rules import DEFAULT_RULES, KpiRule, rule_problems

NonNegative = Annotated[float, msgspec.Meta(ge=0)]
# Names are typed to confirm actions on production nodes and passed to --node: one plain word.
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Threshold(NamedTuple):
    """An alert threshold; a TOML pair `[warning, critical]`, and still indexable like one."""

    warning: NonNegative
    critical: NonNegative


class Thresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    gpu_temp_c: Threshold = Threshold(80.0, 90.0)
    gpu_mem_percent: Threshold = Threshold(90.0, 97.0)
    host_mem_percent: Threshold = Threshold(85.0, 95.0)
    heartbeat_stale_s: Threshold = Threshold(15.0, 60.0)
    telemetry_stale_s: Threshold = Threshold(180.0, 900.0)  # agents known only from OpenTelemetry
    agent_restarts: Threshold = Threshold(10.0, 25.0)
    error_log_rate_per_min: Threshold = Threshold(10.0, 50.0)


class _NodeKeys(msgspec.Struct, frozen=True, kw_only=True):
    """The keys every `[[nodes]]` entry has, whatever its backend; the rest are the backend's Options."""

    name: str
    backend: str
    environment: Environment = "dev"
    read_only: bool = False


_NODE_KEYS: Final = frozenset(field.name for field in msgspec.structs.fields(_NodeKeys))


@dataclasses.dataclass(frozen=True, kw_only=True, init=False)
class NodeConfig(NodeSettings[Any]):  # Any: the options of whichever backend the entry names
    """One `[[nodes]]` entry: the keys every node has (``name``, ``backend``, ``environment``,
    ``read_only``) and, in ``backend_options``, the rest as the named backend's Options struct. It is the
    NodeSettings the backend's ``from_config`` is handed. Secrets never live here: only where to find
    them (token_env/token_file).

    In code, the backend's keys are passed as keywords (``NodeConfig(name="gpu-01", backend="http",
    url=...)``) and read back as attributes (``node.url``); like any msgspec Struct built in code they are
    not validated here (the backend refuses what it cannot use when it is built). A file's entries are
    validated by :func:`load_config`.
    """

    backend: str

    def __init__(
        self,
        *,
        name: str,
        backend: str,
        environment: Environment = "dev",
        read_only: bool = False,
        backend_options: BackendOptions | None = None,
        **keys: Any,
    ) -> None:
        if backend_options is None:
            backend_options = resolve(backend).Options(**keys)
        elif keys:
            raise TypeError(f"give the {backend} backend's keys in backend_options or as keywords, not both")
        for field, value in (
            ("name", name),
            ("backend", backend),
            ("environment", environment),
            ("read_only", read_only),
            ("backend_options", backend_options),
        ):
            object.__setattr__(self, field, value)

    def __getattr__(self, key: str) -> Any:
        """A backend's key reads through: ``node.url`` is ``node.backend_options.url``."""
        if key.startswith("_") or key == "backend_options":  # not set yet (a copy being made)
            raise AttributeError(key)
        try:
            return getattr(self.backend_options, key)
        except AttributeError:
            raise AttributeError(f"the {self.backend} backend has no key {key!r}") from None


def _os_user() -> str:
    try:
        return getpass.getuser() or "operator"
    except Exception:  # no login name and no passwd entry, e.g. an arbitrary uid in a container
        return "operator"


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    operator: Annotated[str, msgspec.Meta(min_length=1)] = msgspec.field(default_factory=_os_user)
    theme: Annotated[str, msgspec.Meta(min_length=1)] = "fleetdeck-dark"
    refresh_s: Annotated[float, msgspec.Meta(ge=0.1, le=3600)] = 1.0
    read_only: bool = False
    nodes: tuple[NodeConfig, ...] = ()
    thresholds: Thresholds = msgspec.field(default_factory=Thresholds)
    keys: dict[str, str] = msgspec.field(default_factory=dict)
    # [[kpis]]: the lines KPIs are judged by (console/core/kpi_rules.py), replacing built-ins of the same name
    kpis: tuple[KpiRule, ...] = ()
    # the KPI the agents table shows; None: the first [[kpis]] rule's, else latency_p95_ms (headline_kpi())
    headline_kpi: KpiName | None = None


class ConfigError(Exception):
    """A config that cannot be used. str() is one line: `FILE: KEY: PROBLEM` (KEY when there is one)."""

    def __init__(self, path: Path, problem: str, key: str | None = None) -> None:
        self.path, self.key, self.problem = path, key, problem
        where = f"{path}: {key}" if key else str(path)
        super().__init__(" ".join(f"{where}: {problem}".split()))  # one line, whatever the input held


# --- loading ------------------------------------------------------------------------------------------


def load_config(path: Path | None = None, *, missing_ok: bool | None = None) -> Config:
    """Read and validate the config file (default: paths.config_file()). Raises ConfigError.

    A missing file gives the defaults, unless `missing_ok` is False (pass that for a path the user
    named, e.g. --config) or, by default, when $FLEETDECK_CONFIG named it: then it is a typo.
    """
    if path is None:
        path = paths.config_file()
        missing_ok = not paths.config_file_overridden() if missing_ok is None else missing_ok
    if missing_ok is False and not path.exists():
        named_by = f" (named by ${paths.CONFIG_ENV})" if paths.config_file_overridden() else ""
        raise ConfigError(path, f"no such file{named_by}")
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return Config()
    except OSError as error:
        raise ConfigError(path, f"cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise _toml_error(path, error) from None
    return config_from_dict(data, path)


def config_from_dict(data: dict[str, Any], path: Path) -> Config:
    """Validate already-parsed TOML `data`; relative paths in it are taken from `path`'s folder."""

    def decode_path(type_: type, value: Any) -> Any:
        if type_ is Path and isinstance(value, str):
            # Relative to the config file, not to wherever the console happens to be started.
            return path.parent / Path(value).expanduser()
        raise TypeError(f"Expected `{type_.__name__}`, got `{type(value).__name__}`")

    # The nodes are checked apart, each against its own backend's Options; the rest in one go. Of two
    # mistakes, the one written first in the file is reported, as one pass over it would.
    order = list(data)
    errors: list[tuple[str | None, str]] = []
    config = Config()
    try:
        config = msgspec.convert(
            {k: v for k, v in data.items() if k != "nodes"}, type=Config, dec_hook=decode_path
        )
    except msgspec.ValidationError as error:
        errors.append(_describe(str(error), data))
    try:
        nodes = _nodes(data.get("nodes", ()), decode_path)
    except _EntryError as error:
        errors.append((error.key, error.problem))
    if errors:
        key, problem = min(errors, key=lambda e: _position(e[0], order))
        raise ConfigError(path, problem, key)
    config = msgspec.structs.replace(config, nodes=nodes)
    for key, problem in _post_check(config):
        raise ConfigError(path, problem, key)
    return config


def _position(key: str | None, order: list[str]) -> int:
    """Where the top-level table or key that `key` (``nodes[2].url``, ``thresholds.x``) lies in the file."""
    top = re.split(r"[.\[]", key or "", maxsplit=1)[0]
    return order.index(top) if top in order else len(order)


class _EntryError(Exception):
    """A `[[nodes]]` entry that cannot be used: `key` names it (``nodes[1].url``), `problem` says why."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


def _nodes(entries: Any, decode_path: Callable[[type, Any], Any]) -> tuple[NodeConfig, ...]:
    """The `[[nodes]]` array, each entry checked against its backend's Options. Raises _EntryError."""
    try:
        tables = msgspec.convert(entries, type=list[dict[str, Any]])
    except msgspec.ValidationError as error:
        key, problem = _describe(str(error).replace(" - at `$", " - at `$.nodes"), {"nodes": entries})
        raise _EntryError(key or "nodes", problem) from None
    return tuple(_node(f"nodes[{index}]", table, decode_path) for index, table in enumerate(tables))


def _node(at: str, table: dict[str, Any], decode_path: Callable[[type, Any], Any]) -> NodeConfig:
    common = {key: value for key, value in table.items() if key in _NODE_KEYS}
    rest = {key: value for key, value in table.items() if key not in _NODE_KEYS}
    try:
        keys = msgspec.convert(common, type=_NodeKeys)
    except msgspec.ValidationError as error:
        key, problem = _describe(str(error), common, _NodeKeys)
        raise _EntryError(f"{at}.{key}" if key else at, problem) from None
    try:
        options_type = resolve(keys.backend).Options
    except Invalid as error:
        raise _EntryError(f"{at}.backend", str(error)) from None
    try:
        options = msgspec.convert(rest, type=options_type, dec_hook=decode_path)
    except msgspec.ValidationError as error:
        required = f"required for backend {keys.backend!r}"
        key, problem = _describe(str(error), rest, options_type, also=_NODE_KEYS, required=required)
        raise _EntryError(f"{at}.{key}" if key else at, problem) from None
    return NodeConfig(
        name=keys.name,
        backend=keys.backend,
        environment=keys.environment,
        read_only=keys.read_only,
        backend_options=options,
    )


def _toml_error(path: Path, error: tomllib.TOMLDecodeError) -> ConfigError:
    # Python 3.11's TOMLDecodeError has no lineno attribute; the position is only in the message.
    match = re.fullmatch(
        r"(?P<problem>.*) \(at (?P<where>line \d+, column \d+|end of document)\)", str(error)
    )
    if match is None:
        return ConfigError(path, f"invalid TOML ({error})")
    return ConfigError(path, f"invalid TOML ({match['problem']})", match["where"])


# --- turning msgspec's errors into `key: problem` -------------------------------------------------------

_TYPE_WORDS: Final = {
    "str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
    "object": "a table", "array": "an array", "null": "nothing", "Path": "a path",
}  # fmt: skip


def _describe(
    message: str,
    data: Any,
    root: Any = None,
    *,
    also: Iterable[str] = (),
    required: str = "required, but missing",
) -> tuple[str | None, str]:
    """`Invalid enum value 'prod' - at `$.nodes[1].environment`` -> (`nodes[1].environment`, problem).

    `root` is the type `data` was checked against (default Config); `also`, more keys valid beside
    its fields (for a suggestion); `required`, the words for a key that must be there."""
    root = Config if root is None else root
    problem, _, where = message.partition(" - at `$")
    parts = re.findall(r"\[[^\]]*\]|[^.\[\]]+", where.rstrip("`"))
    if field := re.fullmatch(r"Object contains unknown field `(.+)`", problem):
        parts.append(field[1])
        problem = "unknown key" + _suggestion(
            field[1], _type_at(parts[:-1], root), () if parts[:-1] else also
        )
    elif field := re.fullmatch(r"Object missing required field `(.+)`", problem):
        parts.append(field[1])
        problem = required
    elif enum := re.fullmatch(r"Invalid enum value (.+)", problem):
        choices = get_args(_type_at(parts, root))
        problem = f"expected one of {', '.join(map(str, choices))}, got {enum[1]}"
    else:
        problem = re.sub(r"`(\w+)`", lambda m: _TYPE_WORDS.get(m[1], m[1]), problem)
        problem = problem[:1].lower() + problem[1:]
    if "[...]" in parts:
        parts = _name_dict_entry(parts, data, root)
    key = "".join(p if p.startswith("[") else f".{p}" for p in parts).lstrip(".")
    return key or None, problem


def _strip(type_: Any) -> Any:
    """The type a value is checked against: without Annotated metadata, without `| None`."""
    while get_origin(type_) is Annotated:
        type_ = get_args(type_)[0]
    arms = [arm for arm in get_args(type_) if arm is not type(None)]
    return arms[0] if type(None) in get_args(type_) and len(arms) == 1 else type_


def _type_at(parts: list[str], root: Any) -> Any:
    """The declared type at a msgspec path inside `root`, e.g. ["thresholds", "gpu_temp_c"] in Config."""
    type_: Any = root
    for part in parts:
        type_ = _strip(type_)
        if part.startswith("["):
            args = get_args(type_)
            type_ = args[-1] if get_origin(type_) is dict else args[0] if args else None
        else:
            try:
                type_ = get_type_hints(type_, include_extras=True).get(part)
            except TypeError:
                return None
    return _strip(type_)


def _suggestion(name: str, struct: Any, also: Iterable[str] = ()) -> str:
    try:
        fields = [*get_type_hints(struct), *also]
    except TypeError:
        return ""
    close = difflib.get_close_matches(name, fields, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _name_dict_entry(parts: list[str], data: Any, root: Any) -> list[str]:
    """msgspec says `keys[...]` for a bad dict value; find which entry it was and name it."""
    index = parts.index("[...]")
    container: Any = data
    for part in parts[:index]:
        container = container[int(part[1:-1])] if part.startswith("[") else container[part]
    value_type = _type_at(parts[: index + 1], root)
    for name, value in container.items():
        try:
            msgspec.convert(value, type=value_type)
        except msgspec.ValidationError:
            return [*parts[:index], name, *parts[index + 1 :]]
    return parts


# --- checks across values -------------------------------------------------------------------------------


def _post_check(config: Config) -> Iterator[tuple[str, str]]:
    """(key, problem) for each hard error msgspec cannot express; load_config reports the first."""
    first_use: dict[str, int] = {}
    for index, node in enumerate(config.nodes):
        at = f"nodes[{index}]"
        if not _NAME_PATTERN.fullmatch(node.name):
            yield f"{at}.name", f"{node.name!r} is not a valid node name (letters, digits, '.', '_', '-')"
        if node.name in first_use:
            yield f"{at}.name", f"duplicate node name {node.name!r} (also nodes[{first_use[node.name]}])"
        first_use.setdefault(node.name, index)
        for key, problem in node.backend_options.problems():
            yield (f"{at}.{key}" if key else at), problem
    for name in msgspec.structs.fields(Thresholds):
        warning, critical = getattr(config.thresholds, name.name)
        if warning > critical:
            yield f"thresholds.{name.name}", f"warning {warning:g} is above critical {critical:g}"
        if name.name.endswith("_percent") and critical > 100:
            yield f"thresholds.{name.name}", f"critical {critical:g} is above 100 percent"
    yield from rule_problems(config.kpis)


def check_config(config: Config) -> list[str]:
    """Problems that do not stop fleetdeck but the operator should hear about (one line each): what a
    node's backend warns of (a token that would cross the network in clear text). The keys and the theme
    are the console's to check (console/keys.py, themes), since only it knows its bindings and themes."""
    problems: list[str] = []
    for index, node in enumerate(config.nodes):
        problems.extend(
            f"nodes[{index}]{'.' + key if key else ''}: {problem}"
            for key, problem in node.backend_options.warnings(node.name)
        )
    return problems


# --- the starter file --------------------------------------------------------------------------------------

_STARTER_HEADER: Final = """\
# fleetdeck config — see README
# Each commented example below works as it is: delete its leading "#" to use it.

"""

_STARTER_MORE_NODES: Final = """
# More nodes are more [[nodes]] tables, e.g.
#   [[nodes]]
#   name = "gpu-01"
#   backend = "http"                      # or "ray", "demo", "local"
#   url = "https://gpu-01.example:8765"
#   token_env = "FLEETDECK_TOKEN_GPU01"   # the variable's name, never the token
#   environment = "production"            # framed in the danger colour; actions need the name typed
"""

# Every example keeps to keys no other action holds on any screen: `fleetdeck config check` and the
# console refuse a rebinding that takes a key from another action (space marks rows, so it is no example).
_STARTER_KEYS: Final = """
# Rebind keys by binding id (Help, `?`, lists them), with Textual key names:
#   [keys]
#   quit = "q"                            # the default, spelled out
#   filter = "slash,ctrl+f"               # a list: either key works
#   pause = "P"                           # shift+p
"""


def _starter_kpis() -> str:
    """The built-in KPI rules, commented, as [[kpis]] tables one can uncomment and change."""
    lines = [
        "\n# KPI thresholds. These rules are built in; a [[kpis]] rule of the same name replaces one.",
        "# direction: which side of the lines is bad; for_s: how long a figure must stay past a line",
        "# before it alerts. Overrides match agents by node and/or labels (the most specific wins).",
    ]
    for rule in DEFAULT_RULES:
        lines += [
            "#   [[kpis]]",
            f'#   name = "{rule.name}"',
            f'#   unit = "{rule.unit}"',
            f"#   warn = {rule.warn:g}",
            f"#   crit = {rule.crit:g}",
            f'#   direction = "{rule.direction}"',
            f"#   for_s = {rule.for_s:g}",
        ]
        if rule.name == "latency_p95_ms":
            lines += [
                "#   [[kpis.overrides]]                  # belongs to the [[kpis]] above it",
                '#   labels = { role = "model-manager" }',
                "#   warn = 200",
                "#   crit = 300",
            ]
    return "\n".join(lines) + "\n"


_STARTER_HEADLINE: Final = (
    '# headline_kpi = "latency_p95_ms"        # the agents table\'s KPI column; default: the first [[kpis]]\n'
)


def starter_config() -> dict[str, Any]:
    """The content of a new config file: this machine as the one node, and every threshold spelled out."""
    return {
        "operator": _os_user(),
        "theme": "fleetdeck-dark",
        "refresh_s": 1.0,
        "read_only": False,
        "nodes": [{"name": "local", "backend": "local", "environment": "dev"}],
        # Ints, so the file reads [80, 90] rather than [80.0, 90.0].
        "thresholds": {
            name.name: [int(value) for value in name.default] for name in msgspec.structs.fields(Thresholds)
        },
    }


def starter_config_text() -> str:
    """starter_config() as TOML, laid out as a person would write it.

    tomli-w alone would write `nodes = [{...}]` (to which a user cannot append a [[nodes]] table)
    and spread each threshold pair over four lines; so each section is dumped on its own.
    """
    data = starter_config()
    nodes, thresholds = data.pop("nodes"), data.pop("thresholds")
    chunks = [_STARTER_HEADER, tomli_w.dumps(data), _STARTER_HEADLINE]
    chunks += [f"\n[[nodes]]\n{tomli_w.dumps(node)}" for node in nodes]
    # Each commented example follows the table it belongs after, so uncommenting it keeps the TOML whole.
    chunks.append(_STARTER_MORE_NODES)
    chunks.append("\n[thresholds]                       # [warning, critical]\n")
    # Numbers and bare keys only, so plain formatting is exact TOML.
    chunks += [f"{name} = [{warning}, {critical}]\n" for name, (warning, critical) in thresholds.items()]
    chunks.append(_starter_kpis())
    chunks.append(_STARTER_KEYS)
    return "".join(chunks)


def write_starter_config(path: Path, overwrite: bool = False) -> Path:
    """Write starter_config() to `path` (creating its folder). Raises ConfigError if it exists."""
    body = starter_config_text()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x" refuses an existing file atomically, so two `config init`s cannot both write.
        with path.open("w" if overwrite else "x", encoding="utf-8") as file:
            file.write(body)
    except FileExistsError:
        raise ConfigError(path, "already exists; not overwriting it") from None
    except OSError as error:
        raise ConfigError(path, f"cannot write ({error.strerror or error})") from None
    return path
