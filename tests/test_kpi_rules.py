"""KPI thresholds: the [[kpis]] config, overrides by node and label, grading with units, and episodes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from backends.model import Agent, Kpi
from console.core.config import Config, ConfigError, config_from_dict, starter_config_text
from console.core.kpi_rules import (
    DEFAULT_RULES,
    Episode,
    KpiRule,
    ResolvedRule,
    episodes,
    grade,
    headline_kpi,
    resolved_rule,
    rule_book,
)


def _load(text: str) -> Config:
    return config_from_dict(tomllib.loads(text), Path("fleetdeck.toml"))


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        _load(text)
    return str(raised.value)


def _agent(labels: dict[str, str] | None = None, *kpis: Kpi) -> Agent:
    return Agent(id="a1", name="retriever-1", labels=labels or {}, kpis=kpis)


LATENCY = """
[[kpis]]
name = "latency_p95_ms"
unit = "ms"
warn = 100
crit = 200
for_s = 30

[[kpis.overrides]]
node = "gpu-01"
crit = 250
for_s = 10

[[kpis.overrides]]
labels = { role = "model-manager" }
warn = 300
crit = 400

[[kpis.overrides]]
labels = { role = "model-manager" }
crit = 500
"""


def test_a_rule_reads_from_toml_with_its_overrides() -> None:
    config = _load(LATENCY)
    (rule,) = config.kpis
    assert (rule.name, rule.unit, rule.warn, rule.crit, rule.direction, rule.for_s) == (
        "latency_p95_ms", "ms", 100, 200, "above", 30,
    )  # fmt: skip
    assert [o.node for o in rule.overrides] == ["gpu-01", None, None]
    assert rule.overrides[1].labels == {"role": "model-manager"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\ndirection = "sideways"\n',
            "fleetdeck.toml: kpis[0].direction: expected one of above, below, got 'sideways'",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 5\ncrit = 2\n',
            "fleetdeck.toml: kpis[0].warn: warn 5 is above crit 2 (direction above: warn <= crit)",
        ),
        (
            '[[kpis]]\nname = "ok_ratio"\nwarn = 0.9\ncrit = 0.99\ndirection = "below"\n',
            "fleetdeck.toml: kpis[0].warn: warn 0.9 is below crit 0.99 (direction below: warn >= crit)",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\nfor = 3\n',
            "fleetdeck.toml: kpis[0].for: unknown key (did you mean for_s?)",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\nfor_s = -1\n',
            "fleetdeck.toml: kpis[0].for_s: expected a number >= 0",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\n',
            "fleetdeck.toml: kpis[0].crit: required, but missing",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\nunit = "furlongs"\n',
            "fleetdeck.toml: kpis[0].unit: expected one of count, ms, s, ratio, percent, bytes, tokens,"
            " usd, per_s, per_min, per_hour, got 'furlongs'",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\n[[kpis.overrides]]\nnode = "gpu-01"\ncrit = 0.5\n',
            "fleetdeck.toml: kpis[0].overrides[0].crit: warn 1 is above crit 0.5"
            " (direction above: warn <= crit)",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\n[[kpis.overrides]]\nwarn = 1.5\n',
            "fleetdeck.toml: kpis[0].overrides[0]: an override needs node or labels"
            " (else it is the rule itself)",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\n[[kpis.overrides]]\nnodes = "gpu-01"\n',
            "fleetdeck.toml: kpis[0].overrides[0].nodes: unknown key (did you mean node?)",
        ),
        (
            '[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\n[[kpis]]\nname = "x_ms"\nwarn = 1\ncrit = 2\n',
            "fleetdeck.toml: kpis[1].name: duplicate KPI rule 'x_ms' (also kpis[0])",
        ),
        ('headline_kpi = "Latency"\n', "fleetdeck.toml: headline_kpi: expected a string matching regex"),
    ],
)
def test_a_bad_rule_is_one_line_naming_its_key(text: str, expected: str) -> None:
    message = _error(text)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_overrides_by_node_then_labels_later_winning_at_equal_specificity() -> None:
    rules = _load(LATENCY).kpis
    plain = resolved_rule(rules, "gpu-02", _agent(), "latency_p95_ms")
    assert plain == ResolvedRule("latency_p95_ms", "ms", 100, 200, "above", 30)
    on_node = resolved_rule(rules, "gpu-01", _agent(), "latency_p95_ms")
    assert on_node == ResolvedRule("latency_p95_ms", "ms", 100, 250, "above", 10)
    # labels beat the node; the node's for_s, which no label override sets, still applies; of the two
    # label overrides the later one's crit wins
    manager = _agent({"role": "model-manager", "zone": "b"})
    assert resolved_rule(rules, "gpu-01", manager, "latency_p95_ms") == ResolvedRule(
        "latency_p95_ms", "ms", 300, 500, "above", 10
    )
    assert resolved_rule(rules, "gpu-02", _agent({"role": "retriever"}), "latency_p95_ms") == plain


def test_built_in_rules_fill_in_and_a_configured_rule_replaces_its_namesake() -> None:
    assert [r.name for r in DEFAULT_RULES] == [
        "latency_p95_ms",
        "success_ratio",
        "error_ratio",
        "otlp_refused_agents",
    ]
    rules = _load(LATENCY).kpis
    success = resolved_rule(rules, "n", _agent(), "success_ratio")
    assert success == ResolvedRule("success_ratio", "ratio", 0.999, 0.99, "below", 60)
    assert resolved_rule((), "n", _agent(), "latency_p95_ms") == ResolvedRule(
        "latency_p95_ms", "ms", 120, 150, "above", 60
    )
    assert resolved_rule(rules, "n", _agent(), "latency_p95_ms").warn == 100  # type: ignore[union-attr]
    assert resolved_rule(rules, "n", _agent(), "tokens_out_total") is None


def test_resolution_is_cached_per_node_and_labels() -> None:
    rules = _load(LATENCY).kpis
    book = rule_book(rules)
    assert rule_book(rules) is book
    first = book.for_agent("gpu-01", {"role": "model-manager"})
    assert book.for_agent("gpu-01", {"role": "model-manager"}) is first
    assert book.for_agent("gpu-02", {"role": "model-manager"}) is not first


def test_grade_by_direction_converting_units() -> None:
    latency = ResolvedRule("latency_p95_ms", "ms", 120, 150, "above", 0)
    assert grade(latency, 119.9, "ms") is None
    assert grade(latency, 120, "ms") == "warning"  # reaching the line counts
    assert grade(latency, 0.16, "s") == "critical"  # 160 ms, reported in seconds
    assert grade(latency, 160, "percent") is None  # not comparable: never judged
    success = ResolvedRule("success_ratio", "ratio", 0.999, 0.99, "below", 0)
    assert grade(success, 99.95, "percent") is None
    assert grade(success, 99.5, "percent") == "warning"
    assert grade(success, 0.95, "ratio") == "critical"
    agnostic = ResolvedRule("queue_depth", None, 10, 20, "above", 0)  # in whatever unit it comes
    assert grade(agnostic, 25, "count") == "critical"


def test_episodes_need_for_s_and_report_start_end_severity_peak() -> None:
    rule = ResolvedRule("latency_p95_ms", "ms", 120, 150, "above", 60)
    one_slow = [(0, 100), (10, 200), (20, 100)]
    assert episodes(one_slow, rule, "ms") == []
    points = [(float(t), 100.0) for t in range(0, 100, 10)]
    points += [(100.0, 130.0), (110.0, 160.0), (120.0, 170.0), (180.0, 165.0), (190.0, 125.0)]
    points += [(200.0, 90.0), (210.0, 130.0), (300.0, 131.0)]
    assert episodes(points, rule, "ms") == [
        Episode(100.0, 200.0, "critical", 170.0),  # critical held 110 -> 190 (80 s)
        Episode(210.0, None, "warning", 131.0),  # still going: no end
    ]
    success = ResolvedRule("success_ratio", "ratio", 0.999, 0.99, "below", 0)
    assert episodes([(0, 99.95), (1, 98.0), (2, 99.99)], success, "percent") == [
        Episode(1, 2, "critical", 98.0)
    ]


def test_a_counter_is_judged_on_its_rate() -> None:
    rule = ResolvedRule("ops_total", "per_hour", 1000, 500, "below", 0)
    # 2 ops/s = 7,200/h: fine; then 0.1/s = 360/h: critical; a reset (drop to 3) reads as 3 new ops
    points = [(0.0, 0.0), (10.0, 20.0), (20.0, 21.0), (30.0, 3.0), (40.0, 23.0)]
    assert episodes(points, rule, "count", kind="counter") == [Episode(20.0, 30.0, "critical", 0.1)]


def test_headline_kpi() -> None:
    latency = Kpi(name="latency_p95_ms", value=97, unit="ms", at=1)
    tokens = Kpi(name="tokens_out_total", value=9, unit="tokens", at=1, kind="counter")
    assert headline_kpi(Config(headline_kpi="tokens_out_total"), []) == "tokens_out_total"
    assert headline_kpi(_load(LATENCY), []) == "latency_p95_ms"
    assert headline_kpi(Config(), [_agent({}, tokens, latency)]) == "latency_p95_ms"
    assert headline_kpi((), [_agent({}, tokens)]) == "tokens_out_total"
    assert headline_kpi(Config(), [_agent()]) is None
    only = (KpiRule(name="success_ratio", warn=0.99, crit=0.9, direction="below"),)
    assert headline_kpi(only, [_agent({}, latency)]) == "success_ratio"


def test_the_starter_file_shows_the_built_in_rules_commented() -> None:
    text = starter_config_text()
    assert '#   name = "latency_p95_ms"' in text and '#   direction = "below"' in text
    uncommented = "\n".join(
        line.removeprefix("#   ") if line.startswith("#   ") and "[keys]" not in line else line
        for line in text.splitlines()
    )
    uncommented = uncommented.replace("# headline_kpi", "headline_kpi")
    config = _load(uncommented.replace('quit = "q"', "").split("# Rebind keys")[0])
    assert [rule.name for rule in config.kpis] == [rule.name for rule in DEFAULT_RULES]
    assert config.kpis[0].overrides[0].labels == {"role": "model-manager"}
    assert config.headline_kpi == "latency_p95_ms"
