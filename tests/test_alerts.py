"""Alerts: each threshold rule at its warning/critical boundaries, the error-log rate, and the AlertBook
(since-when, flapping folded into one alert, acks, snoozes, persistence) with an injected clock."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from backends.model import (
    Agent,
    Gate,
    Gpu,
    GpuStatus,
    LogRecord,
    NodeInfo,
    NodeSnapshot,
    Phase,
    SystemMetrics,
)
from console.core.alert_book import FILE_NAME, FLAP_WINDOW_S, PRUNE_EVERY_S, SAVE_EVERY_S, AlertBook
from console.core.alerts import Alert, alert_key, node_alerts, recent_error_counts, split_key
from console.core.clock import FrozenClock
from console.core.config import Threshold, Thresholds

from .conftest import T0

GIB = 1024**3
TH = (
    Thresholds()
)  # gpu_temp 80/90, gpu_mem 90/97, host_mem 85/95, heartbeat 15/60, restarts 10/25, errors 10/50


def snapshot(**fields: Any) -> NodeSnapshot:
    return NodeSnapshot(node=NodeInfo(id="n1", name="n1", backend="demo"), observed_at=T0, **fields)


def judged(snap: NodeSnapshot, **kw: Any) -> dict[tuple[str, str], str]:
    """(subject, rule) -> severity of every alert."""
    return {(a.subject, a.rule): a.severity for a in node_alerts(snap, TH, T0, **kw)}


def agent(**fields: Any) -> Agent:
    base: dict[str, Any] = {"id": "a1", "name": "a1", "state": "running", "health": "healthy"}
    return Agent(**{**base, **fields})


# --- the rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("temperature", "expected"),
    [(79.9, None), (80.0, "warning"), (89.9, "warning"), (90.0, "critical"), (None, None)],
)
def test_gpu_temperature(temperature: float | None, expected: str | None) -> None:
    alerts = judged(snapshot(gpus=(Gpu(index=3, temperature_c=temperature),)))
    assert alerts.get(("gpu:3", "gpu_temp")) == expected


@pytest.mark.parametrize(
    ("used_percent", "expected"), [(89, None), (90, "warning"), (96, "warning"), (97, "critical")]
)
def test_gpu_memory(used_percent: int, expected: str | None) -> None:
    gpu = Gpu(index=0, mem_total=100 * GIB, mem_used=used_percent * GIB)
    assert judged(snapshot(gpus=(gpu,))).get(("gpu:0", "gpu_mem")) == expected


def test_gpu_memory_unknown_total_is_no_alert() -> None:
    assert judged(snapshot(gpus=(Gpu(index=0, mem_total=None, mem_used=99 * GIB),))) == {}


def test_gpu_metrics_error_is_a_warning_but_no_driver_is_not() -> None:
    assert judged(snapshot(gpu_status=GpuStatus(status="error", reason="NVML hung"))) == {
        ("gpu", "gpu_status"): "warning"
    }
    assert judged(snapshot(gpu_status=GpuStatus(status="no_driver"))) == {}


@pytest.mark.parametrize(("used_percent", "expected"), [(84, None), (85, "warning"), (95, "critical")])
def test_host_memory(used_percent: int, expected: str | None) -> None:
    system = SystemMetrics(mem_total=100 * GIB, mem_used=used_percent * GIB)
    assert judged(snapshot(system=system)).get(("host", "host_mem")) == expected


@pytest.mark.parametrize(
    ("age", "expected"), [(14.9, None), (15.0, "warning"), (59.0, "warning"), (60.0, "critical")]
)
def test_heartbeat_staleness(age: float, expected: str | None) -> None:
    alerts = node_alerts(snapshot(agents=(agent(last_heartbeat=T0 - age),)), TH, T0)
    heartbeat = [a for a in alerts if a.rule == "heartbeat"]
    assert [a.severity for a in heartbeat] == ([expected] if expected else [])
    if heartbeat:
        assert heartbeat[0].since == T0 - age  # since-when comes from the data: the last heartbeat


def test_heartbeat_of_a_stopped_agent_is_not_stale() -> None:
    assert judged(snapshot(agents=(agent(state="stopped", last_heartbeat=T0 - 3600),))) == {}


@pytest.mark.parametrize(
    ("restarts", "expected"), [(9, None), (10, "warning"), (24, "warning"), (25, "critical")]
)
def test_agent_restarts(restarts: int, expected: str | None) -> None:
    assert judged(snapshot(agents=(agent(restarts=restarts),))).get(("agent:a1", "restarts")) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"health": "degraded"}, "warning"),
        ({"health": "unhealthy"}, "critical"),
        ({"state": "failed", "health": "unknown"}, "critical"),
        ({"health": "healthy"}, None),
    ],
)
def test_agent_health_is_one_rule_at_every_severity(fields: dict[str, Any], expected: str | None) -> None:
    assert judged(snapshot(agents=(agent(**fields),))).get(("agent:a1", "agent_health")) == expected


def test_gate_no_go_overdue_and_failed_phases() -> None:
    phases = (
        Phase(
            id="p1", name="P1", order=1, status="active", gate=Gate(decision="no-go", reasons=("P95 high",))
        ),
        Phase(id="p2", name="P2", order=2, status="active", due_at=T0 - 7200),
        Phase(id="p3", name="P3", order=3, status="failed"),
        Phase(id="p4", name="P4", order=4, status="done", due_at=T0 - 7200, gate=Gate(decision="no-go")),
    )
    alerts = node_alerts(snapshot(phases=phases), TH, T0)
    assert {(a.subject, a.rule, a.severity) for a in alerts} == {
        ("phase:p1", "gate_no_go", "warning"),
        ("phase:p2", "phase_overdue", "warning"),
        ("phase:p3", "phase_failed", "critical"),
    }
    gate = next(a for a in alerts if a.rule == "gate_no_go")
    assert "P95 high" in gate.reason
    overdue = next(a for a in alerts if a.rule == "phase_overdue")
    assert overdue.since == T0 - 7200 and "2 h" in overdue.reason


def record(seq: int, ts: float, level: str = "error", source: str = "a1") -> LogRecord:
    return LogRecord(seq=seq, ts=ts, level=level, source=source, message="boom")  # type: ignore[arg-type]


def test_recent_error_counts_take_the_last_minute_of_errors_per_source() -> None:
    logs = deque(
        [
            record(1, T0 - 61),  # too old
            record(2, T0 - 60),  # exactly a minute: outside (now - 60, now]
            record(3, T0 - 59),
            record(4, T0 - 30, level="critical"),
            record(5, T0 - 20, level="warning"),  # not an error
            record(6, T0 - 10, source="node"),
            record(7, T0 - 1, source="b2"),
        ]
    )
    assert recent_error_counts(logs, T0) == {"a1": 2, "node": 1, "b2": 1}


@pytest.mark.parametrize(
    ("count", "expected"), [(9, None), (10, "warning"), (49, "warning"), (50, "critical")]
)
def test_error_log_rate(count: int, expected: str | None) -> None:
    alerts = judged(snapshot(agents=(agent(),)), error_counts={"a1": count})
    assert alerts.get(("agent:a1", "error_rate")) == expected


def test_error_rate_of_the_node_itself_and_unknown_logs() -> None:
    assert judged(snapshot(), error_counts={"node": 60}) == {("node", "error_rate"): "critical"}
    assert judged(snapshot()) == {}  # no log counts given: the rule is skipped, not "0 errors"


def test_thresholds_come_from_the_config() -> None:
    strict = Thresholds(gpu_temp_c=Threshold(50, 60), error_log_rate_per_min=Threshold(1, 2))
    snap = snapshot(gpus=(Gpu(index=0, temperature_c=55.0),))
    alerts = {a.rule: a.severity for a in node_alerts(snap, strict, T0, {"node": 2})}
    assert alerts == {"gpu_temp": "warning", "error_rate": "critical"}


def test_alert_keys_are_stable_and_split_back() -> None:
    one = node_alerts(snapshot(agents=(agent(last_heartbeat=T0 - 20),)), TH, T0)
    later = node_alerts(snapshot(agents=(agent(last_heartbeat=T0 - 20),)), TH, T0 + 5)
    assert [a.key for a in one] == [a.key for a in later] == ["n1/agent:a1/heartbeat"]
    assert one[0].reason != later[0].reason  # the numbers move; the key does not
    assert split_key(alert_key("n1", "agent:x/y", "heartbeat")) == ("n1", "agent:x/y", "heartbeat")
    assert (
        node_alerts(snapshot(agents=(agent(health="degraded"),)), TH, T0, name="gpu-01")[0].node == "gpu-01"
    )


# --- the book ------------------------------------------------------------------------------------------


def warn(subject: str = "gpu:0", rule: str = "gpu_temp", severity: str = "warning", **kw: Any) -> Alert:
    return Alert(severity, "n1", subject, kw.pop("reason", f"{rule} {severity}"), rule=rule, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def book_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / FILE_NAME


def test_since_is_kept_across_updates_and_reasons_follow(clock: FrozenClock) -> None:
    book = AlertBook(None, clock)
    book.update("n1", [warn(reason="81°C")], T0)
    book.update("n1", [warn(reason="84°C")], T0 + 30)
    [entry] = book.active()
    assert (entry.since, entry.reason, entry.times) == (T0, "84°C", 1)


def test_since_uses_the_datas_own_start_when_it_is_earlier(clock: FrozenClock) -> None:
    book = AlertBook(None, clock)
    book.update("n1", [warn("agent:a1", "heartbeat", since=T0 - 74)], T0)
    assert book.active()[0].since == T0 - 74


def test_flapping_is_folded_into_one_alert_with_a_count(clock: FrozenClock) -> None:
    book = AlertBook(None, clock, flap_window_s=600)
    book.update("n1", [warn()], T0)
    for step in range(1, 4):  # clears and comes back three times, well inside the window
        book.update("n1", [], T0 + step * 100)
        assert book.active() == []
        book.update("n1", [warn()], T0 + step * 100 + 50)
    [entry] = book.active()
    assert (entry.since, entry.flaps, entry.times) == (T0, 3, 4)


def test_an_alert_back_after_the_flap_window_is_a_new_episode(clock: FrozenClock) -> None:
    book = AlertBook(None, clock, flap_window_s=600)
    book.update("n1", [warn()], T0)
    book.update("n1", [], T0 + 10)
    book.update("n1", [warn()], T0 + 10 + 601)
    [entry] = book.active()
    assert (entry.since, entry.flaps) == (T0 + 611, 0)


def test_update_of_one_node_leaves_the_others_alone(clock: FrozenClock) -> None:
    book = AlertBook(None, clock)
    other = Alert("critical", "n2", "host", "memory 99% used", rule="host_mem")
    book.update("n1", [warn()], T0)
    book.update("n2", [other], T0)
    book.update("n1", [], T0 + 1)
    assert [e.key for e in book.active()] == [other.key]
    assert [e.node for e in book.active("n2")] == ["n2"] and book.active("n1") == []


def test_active_is_worst_first_then_oldest_first(clock: FrozenClock) -> None:
    book = AlertBook(None, clock)
    book.update("n1", [warn("gpu:1")], T0)
    book.update("n1", [warn("gpu:1"), warn("gpu:0"), warn("host", "host_mem", "critical")], T0 + 5)
    assert [e.subject for e in book.active()] == ["host", "gpu:1", "gpu:0"]
    assert book.counts() == (1, 2)


def test_ack_hides_from_counts_until_the_alert_clears(clock: FrozenClock) -> None:
    book = AlertBook(None, clock, flap_window_s=600)
    book.update("n1", [warn()], T0)
    assert book.acknowledge(warn().key)
    assert book.counts() == (0, 0)
    assert [e.acked for e in book.active()] == [True]  # still listed (dimmed), just not counted
    book.update("n1", [], T0 + 10)
    book.update("n1", [warn()], T0 + 20)  # a flap: the same episode, still acknowledged
    assert book.counts() == (0, 0)
    book.update("n1", [], T0 + 30)
    book.update("n1", [warn()], T0 + 30 + 601)  # cleared for good, then a new episode: needs a look again
    assert book.counts() == (0, 1)


def test_ack_ends_when_the_severity_rises_but_not_when_it_falls(clock: FrozenClock) -> None:
    book = AlertBook(None, clock)
    book.update("n1", [warn(severity="critical")], T0)
    book.acknowledge(warn().key)
    book.update("n1", [warn(severity="warning")], T0 + 1)
    assert book.counts() == (0, 0)
    book.update("n1", [warn(severity="critical")], T0 + 2)  # back to what was acknowledged: no rise
    assert book.counts() == (0, 0)

    book = AlertBook(None, clock)
    book.update("n1", [warn(severity="warning")], T0)
    book.acknowledge(warn().key)
    book.update("n1", [warn(severity="critical")], T0 + 1)
    assert book.counts() == (1, 0)
    assert not book.active()[0].acked


def test_unacknowledge_and_acking_a_cleared_alert(clock: FrozenClock) -> None:
    book = AlertBook(None, clock)
    book.update("n1", [warn()], T0)
    book.acknowledge(warn().key)
    assert book.unacknowledge(warn().key)
    assert book.counts() == (0, 1)
    book.update("n1", [], T0 + 1)
    assert not book.acknowledge(warn().key)
    assert not book.acknowledge("n1/nothing/here")


def test_snooze_hides_until_it_expires(clock: FrozenClock) -> None:
    book = AlertBook(None, clock)
    book.update("n1", [warn()], T0)
    assert book.snooze(warn().key, 3600)
    assert book.counts(now=T0 + 3599) == (0, 0)
    assert book.active()[0].snoozed(T0 + 3599)
    assert book.counts(now=T0 + 3600) == (0, 1)
    clock.set(T0 + 1800)
    assert book.counts() == (0, 0)  # the book's clock is "now" by default
    assert book.unsnooze(warn().key)
    assert book.counts() == (0, 1)


def test_snooze_outlives_an_episode_but_not_a_rise_in_severity(clock: FrozenClock) -> None:
    book = AlertBook(None, clock, flap_window_s=60)
    book.update("n1", [warn()], T0)
    book.snooze(warn().key)  # default: an hour
    book.update("n1", [], T0 + 10)
    book.update("n1", [warn()], T0 + 600)  # a new episode, inside the hour
    assert book.counts(now=T0 + 600) == (0, 0)
    book.update("n1", [warn(severity="critical")], T0 + 700)
    assert book.counts(now=T0 + 700) == (1, 0)


def test_acks_snoozes_and_episodes_persist_across_a_new_book(clock: FrozenClock, book_path: Path) -> None:
    book = AlertBook(book_path, clock)
    heat, disk = warn(), warn("host", "host_mem", "critical")
    book.update("n1", [heat, disk], T0)
    book.acknowledge(heat.key)
    book.snooze(disk.key, 600)
    assert book_path.exists() and not book.warnings

    again = AlertBook(book_path, FrozenClock(T0 + 60))
    assert again.active() == []  # nothing is shown until its node is polled again
    again.update("n1", [heat, disk], T0 + 60)
    by_key = {e.key: e for e in again.active()}
    assert by_key[heat.key].acked and by_key[heat.key].since == T0  # the episode went on across the restart
    assert by_key[disk.key].snoozed(T0 + 60)
    assert again.counts() == (0, 0)
    assert not list(book_path.parent.glob(".*"))  # no temp file left behind


def test_episode_changes_are_saved_every_few_seconds_and_flushed_at_the_end(
    clock: FrozenClock, book_path: Path
) -> None:
    book = AlertBook(book_path, clock)
    book.update("n1", [warn()], T0)  # the first change is written at once
    written = book_path.read_bytes()
    book.update("n1", [], T0 + 1)  # a hundred nodes change something every second: this one waits
    assert book_path.read_bytes() == written
    book.flush()
    assert json.loads(book_path.read_text())["alerts"][0]["cleared_at"] == T0 + 1
    book.update("n1", [warn()], T0 + 2)
    book.update("n1", [warn(severity="critical")], T0 + 2 + SAVE_EVERY_S)  # due again: written
    assert json.loads(book_path.read_text())["alerts"][0]["severity"] == "critical"


def test_an_ack_is_written_at_once(clock: FrozenClock, book_path: Path) -> None:
    book = AlertBook(book_path, clock)
    book.update("n1", [warn()], T0)
    book.update("n1", [warn(severity="critical")], T0 + 1)
    assert book.acknowledge(warn().key)
    saved = json.loads(book_path.read_text())["alerts"][0]
    assert (saved["severity"], saved["acked_severity"]) == ("critical", "critical")


def test_entries_gone_for_a_day_are_pruned(clock: FrozenClock, book_path: Path) -> None:
    book = AlertBook(book_path, clock)
    book.update("n1", [warn()], T0)
    book.update("n1", [], T0 + 10)
    book.update("n2", [], T0 + 10 + 86_401)
    assert book.get(warn().key) is None
    assert json.loads(book_path.read_text())["alerts"] == []


def test_an_episode_over_is_forgotten_at_the_next_prune_unless_snoozed(
    clock: FrozenClock, book_path: Path
) -> None:
    """An alert that stayed clear past the flap window has nothing left to remember (its next firing is a new
    episode), so the book forgets it rather than keeping every heartbeat blip of a big fleet for a day."""
    book = AlertBook(book_path, clock)
    snoozed = warn(subject="gpu:1")
    book.update("n1", [warn(), snoozed], T0)
    assert book.snooze(snoozed.key, seconds=7200)
    book.update("n1", [], T0 + 10)
    book.update("n1", [], T0 + 10 + FLAP_WINDOW_S - 1)  # within the window: a return would be a flap
    assert book.get(warn().key) is not None
    book.update("n1", [], T0 + 10 + FLAP_WINDOW_S + PRUNE_EVERY_S + 1)
    assert book.get(warn().key) is None
    assert book.get(snoozed.key) is not None  # a snooze spans episodes: kept until it ends
    book.flush()
    assert [a["key"] for a in json.loads(book_path.read_text())["alerts"]] == [snoozed.key]


def test_alerts_of_a_node_no_longer_configured_are_never_shown(clock: FrozenClock, book_path: Path) -> None:
    old = AlertBook(book_path, clock)
    old.update("gone", [Alert("critical", "gone", "host", "x", rule="host_mem")], T0)
    book = AlertBook(book_path, FrozenClock(T0 + 5))
    book.update("n1", [warn()], T0 + 5)
    assert [e.node for e in book.active()] == ["n1"]
    assert book.counts() == (0, 1)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"version": 1, "alerts": [{"key": 3}]}', b"[]", b'{"version": 99, "alerts": []}'],
    ids=["syntax", "shape", "type", "version"],
)
def test_a_corrupt_file_starts_empty_with_a_warning(
    clock: FrozenClock, book_path: Path, content: bytes
) -> None:
    book_path.parent.mkdir(parents=True)
    book_path.write_bytes(content)
    book = AlertBook(book_path, clock)
    assert book.active() == []
    [warning] = book.take_warnings()
    assert str(book_path) in warning and "starting empty" in warning
    assert book.take_warnings() == []
    book.update("n1", [warn()], T0)  # and it goes on working, replacing the bad file
    assert json.loads(book_path.read_text())["alerts"][0]["key"] == warn().key


def test_an_unwritable_state_dir_is_a_warning_not_a_crash(clock: FrozenClock, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    book = AlertBook(blocker / FILE_NAME, clock)
    book.update("n1", [warn()], T0)
    book.update("n1", [warn(severity="critical")], T0 + 1)
    assert book.counts() == (1, 0)
    warnings = book.take_warnings()
    assert any("cannot read saved alerts" in w for w in warnings)
    assert len([w for w in warnings if "cannot save alerts" in w]) == 1  # said once, not once per refresh
