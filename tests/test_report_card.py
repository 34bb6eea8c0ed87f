"""``fleetdeck report-card``: what the card holds (criteria, gates and sign-offs, KPI summaries, alerts with
durations, operator actions), how each format keeps the node's text as text, golden files on the demo fleet,
a real local node, and the HTML in a real headless browser.

Golden files: tests/data/report_card/. After a meant change, regenerate them with
``FLEETDECK_UPDATE_GOLDEN=1 python -m pytest tests/test_report_card.py`` and read the diff before committing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from backends.local.store import Store
from backends.model import (
    Agent,
    AuditEntry,
    Criterion,
    Gate,
    GateSignoff,
    KpiSeries,
    Milestone,
    NodeInfo,
    NodeSnapshot,
    Phase,
)
from console.core.report_card.build import NO_AUDIT, NO_HISTORY, Gathered, make_card
from console.core.report_card.card import ReportCard, to_json
from console.core.report_card.html import render as render_html
from console.core.report_card.markdown import render as render_md
from console.core.report_card.period import PeriodError, parse_period

from .conftest import one_line_error

GOLDEN = Path(__file__).parent / "data" / "report_card"
UPDATE = os.environ.get("FLEETDECK_UPDATE_GOLDEN") == "1"
T = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
DAY = 86400.0
SCRIPT = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# --- the card, from what a node holds ------------------------------------------------------------------


def _hostile_phase() -> Phase:
    criterion = Criterion(
        name=SCRIPT,
        target="< 120 ms | or else",
        actual="\x1b]0;pwned\x07131 ms\nsecond line",
        passed=False,
        kpi="latency_p95_ms",
        since=T - 3600,
    )
    return Phase(
        id="p-x",
        name="Scale | out\nnext",
        order=1,
        status="active",
        progress=0.5,
        milestones=(
            Milestone(id="w7", name="W7 *load* [test](javascript:alert(1))", criteria=(criterion,)),
            Milestone(
                id="w8",
                name="W8 Failover",
                criteria=(Criterion(name="Rollback time", target="< 5 s", actual="3.1 s", passed=True),),
            ),
        ),
        gate=Gate(
            decision="no-go",
            reasons=(f"P95 latency: 131 ms {SCRIPT}",),
            since=T - 600,
            signed=GateSignoff(
                decision="no-go", operator="mallory<img src=x>", at=T - 1800, reason="hold|it"
            ),
        ),
    )


def _latency(agent: str, high: tuple[int, int] | None) -> KpiSeries:
    """A point every 30 s over the last hour: 100 ms, or 170 ms for the steps in ``high`` (inclusive)."""
    points = []
    for step in range(121):
        value = 170.0 if high and high[0] <= step <= high[1] else 100.0
        points.append((T - 3600 + step * 30, value if high else 90.0))
    return KpiSeries(agent_id=agent, name="latency_p95_ms", unit="ms", points=tuple(points))


def _audit() -> list[AuditEntry]:
    def entry(seq: int, ts: float, operator: str, action: str, target: str, **extra: Any) -> AuditEntry:
        return AuditEntry(
            seq=seq, ts=ts, operator=operator, action=action, target=target, outcome="ok", **extra
        )

    return [
        entry(1, T - 9 * DAY, "alice", "pause", "agent:retriever-01", reason="before the period"),
        entry(
            2, T - 7200, "node", "criterion.verdict", "phase:p-x", params=_change("criterion:w7/P95", "fail")
        ),
        entry(
            3, T - 3600, "node", "criterion.verdict", "phase:p-x", params=_change("criterion:w7/P95", "pass")
        ),
        entry(4, T - 1800, "mallory<img src=x>", "gate.sign", "phase:p-x", reason="hold|it", detail="no-go"),
        entry(
            5,
            T - 600,
            "node",
            "gate.decision",
            "phase:p-x",
            params=_change("gate:p-x", "no-go"),
            detail="NO-GO: P95 latency",
        ),
    ]


def _change(subject: str, to: str) -> dict[str, str]:
    """An audit entry's params for a verdict the node recorded (backends/local/plan_history.py)."""
    return {"subject": subject, "from": "none", "to": to}


def _gathered(*, history: bool = True, audit: bool = True) -> Gathered:
    snapshot = NodeSnapshot(
        node=NodeInfo(id="gpu|01", name="gpu|01", backend="demo", environment="staging"),
        observed_at=T,
        agents=(Agent(id="retriever-01", name="retriever-01"), Agent(id="retriever-02", name="retriever-02")),
        phases=(_hostile_phase(),),
    )
    tokens = KpiSeries(
        agent_id="retriever-01",
        name="tokens_out_total",
        unit="tokens",
        kind="counter",
        points=((T - 300, 0.0), (T - 200, 1000.0), (T - 100, 2000.0), (T - 50, 500.0)),
    )
    series = [_latency("retriever-01", (60, 70)), _latency("retriever-02", None), tokens]
    return Gathered(
        snapshot=snapshot,
        history=series if history else None,
        history_note=None if history else NO_HISTORY,
        audit=_audit() if audit else None,
        audit_note=None if audit else NO_AUDIT,
    )


def _card(**kwargs: bool) -> ReportCard:
    return make_card(_gathered(**kwargs), node="gpu|01", rules=(), period="1d", start=T - DAY, end=T)


def test_criteria_gate_and_signoff_are_on_the_card() -> None:
    card = _card()
    (phase,) = card.phases
    first, second = (m.criteria[0] for m in phase.milestones)
    assert (first.verdict, first.since, second.verdict) == ("FAIL", T - 3600, "PASS")
    assert phase.gate is not None and phase.gate.decision == "no-go"
    assert phase.gate.signed is not None and phase.gate.signed.operator == "mallory<img src=x>"
    assert (card.period_start, card.period_end, card.generated_at) == (T - DAY, T, T)


def test_kpi_summaries_per_kpi_and_per_agent_where_few() -> None:
    rows = {(s.name, s.agent_id): s for s in _card().kpis.summaries}
    fleet = rows[("latency_p95_ms", None)]
    assert (fleet.agents, fleet.points, fleet.min, fleet.max, fleet.last) == (2, 242, 90.0, 170.0, 95.0)
    one = rows[("latency_p95_ms", "retriever-01")]
    # 11 of 121 points are 170 ms: the 95th percentile falls among them
    assert (one.min, one.p95, one.max, one.last) == (100.0, 170.0, 170.0, 100.0)
    tokens = rows[("tokens_out_total", "retriever-01")]
    assert (tokens.last, tokens.increase) == (500.0, 2500.0)  # the drop to 500 is a restart, not a loss


def test_alerts_have_durations_from_the_history_and_the_audit_trail() -> None:
    alerts = {(a.source, a.subject): a for a in _card().alerts}
    breach = alerts[("kpi", "latency_p95_ms on retriever-01")]
    # 170 ms from step 60 to step 70, back under at step 71: 330 s past the line, over crit's 150 ms
    assert (breach.severity, breach.start, breach.end, breach.duration_s) == (
        "critical",
        T - 1800,
        T - 1470,
        330,
    )
    assert "170 ms" in breach.detail and "150 ms" in breach.detail
    assert ("kpi", "latency_p95_ms on retriever-02") not in alerts  # 90 ms all along
    group = next(g for g in _card().alert_groups if g.source == "kpi")
    assert (group.kpi, group.agent, group.fired, group.critical) == ("latency_p95_ms", "retriever-01", 1, 1)
    assert (group.longest_s, group.total_s, group.worst, group.line) == (
        330,
        330,
        "peak 170 ms",
        "crit >= 150 ms",
    )
    # a sample every 30 s, finer than the rule's 60 s: the durations are as measured
    assert (group.sampling_s, group.to_nearest_sample, breach.to_nearest_sample) == (30, False, False)
    failed = alerts[("criterion", "w7/P95")]
    assert (failed.start, failed.end, failed.duration_s) == (T - 7200, T - 3600, 3600)
    gate = alerts[("gate", "phase p-x")]
    assert (gate.end, gate.duration_s) == (None, 600)  # still NO-GO when the card was made


def _flapping(agent: str, every: int, value: float) -> KpiSeries:
    """A week of latency sampled every 30 min, as a demo node keeps one: ``value`` at every ``every``-th
    sample (one sample over the line, the next back under), 100 ms otherwise."""
    points = tuple((T - 7 * DAY + k * 1800, value if k % every == every - 1 else 100.0) for k in range(337))
    return KpiSeries(agent_id=agent, name="latency_p95_ms", unit="ms", points=points)


def _week(series: list[KpiSeries], audit: list[AuditEntry] | None = None) -> ReportCard:
    snapshot = NodeSnapshot(
        node=NodeInfo(id="n", name="n", backend="demo", environment="staging"), observed_at=T, agents=()
    )
    gathered = Gathered(
        snapshot=snapshot, history=series, history_note=None, audit=audit or [], audit_note=None
    )
    return make_card(gathered, node="n", rules=(), period="7d", start=T - 7 * DAY, end=T)


def test_a_flapping_kpi_is_one_group_with_its_counts_and_its_sampling() -> None:
    card = _week([_flapping("a", 4, 170.0), _flapping("b", 3, 130.0), _flapping("c", 6, 160.0)])
    # every episode is in the JSON: 84 on a, 112 on b, 56 on c
    assert len(card.alerts) == 84 + 112 + 56
    first, _, third = card.alert_groups
    # critical first, then the longest over the line in all: a (84 x 30 min) before c (56 x 30 min)
    assert [(g.agent, g.severity, g.fired, g.critical) for g in card.alert_groups] == [
        ("a", "critical", 84, 84),
        ("c", "critical", 56, 56),
        ("b", "warning", 112, 0),
    ]
    assert (first.total_s, first.longest_s, first.first_start) == (84 * 1800, 1800, T - 7 * DAY + 3 * 1800)
    assert (first.worst, third.worst, third.line) == ("peak 170 ms", "peak 130 ms", "warn >= 120 ms")
    # 30 min between samples, coarser than the rule's 60 s: each duration is known to a sample only
    assert all(g.sampling_s == 1800 and g.to_nearest_sample for g in card.alert_groups)
    assert all(a.sampling_s == 1800 and a.to_nearest_sample for a in card.alerts)
    decoded = json.loads(to_json(card))
    assert len(decoded["alerts"]) == 252 and decoded["alert_groups"][0]["fired"] == 84
    assert msgspec.json.decode(to_json(card), type=ReportCard) == card

    text = render_md(card)
    assert "3 alerts (2 critical, 1 warning) from 252 episodes" in text
    assert "| 🔴 critical | `latency_p95_ms` | a | 84 | " in text
    assert "| 30m00s ± 30 min | ≈ 1d18h | peak 170 ms | crit >= 150 ms |" in text
    assert "durations to the nearest sample" in text and "every 30 min" in text
    # the episodes themselves: only the latest ten, newest first
    episodes = [line for line in text.splitlines() if line.startswith("| latency_p95_ms on ")]
    assert len(episodes) == 10 and "The latest 10 of 252 KPI breach episodes" in text
    page = render_html(card)
    assert page.count("latency_p95_ms on ") == 10 and "± 30 min" in page and "from 252 episodes" in page


def test_few_verdict_changes_are_listed_and_many_are_grouped() -> None:
    def changes(count: int) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        for k in range(count):
            for step, to in ((0, "fail"), (600, "pass")):
                entries.append(
                    AuditEntry(
                        seq=len(entries) + 1,
                        ts=T - DAY + k * 1200 + step,
                        operator="node",
                        action="criterion.verdict",
                        target="phase:p1",
                        outcome="ok",
                        params=_change("criterion:w7/P95", to),
                    )
                )
        return entries

    few = render_md(_week([], changes(3)))
    assert few.count("| Criterion FAIL | w7/P95 |") == 3 and "1 alert (1 critical, 0 warning) from 3" in few
    many = _week([], changes(25))
    (group,) = many.alert_groups
    assert (group.fired, group.longest_s, group.total_s, group.last_end) == (
        25,
        600,
        25 * 600,
        T - DAY + 24 * 1200 + 600,
    )
    text = render_md(many)
    (row,) = [line for line in text.splitlines() if line.startswith("| Criterion FAIL")]
    assert "| w7/P95 | 25 |" in row and "| 10m00s | 4h10m |" in row


def test_operator_actions_are_the_periods_and_not_the_nodes_own() -> None:
    actions = _card().actions
    assert [(a.seq, a.operator, a.action, a.reason) for a in actions] == [
        (4, "mallory<img src=x>", "gate.sign", "hold|it")
    ]


def test_a_node_without_history_or_audit_says_so() -> None:
    card = _card(history=False, audit=False)
    assert not card.kpis.kept and not card.audit.kept
    assert card.alerts == () and card.actions == ()
    text = render_md(card)
    assert "No history kept by this node." in text and "No audit trail kept by this node." in text
    assert "No history kept by this node." in render_html(card)


def test_json_is_the_card_and_reads_back() -> None:
    card = _card()
    document = to_json(card)
    assert msgspec.json.decode(document, type=ReportCard) == card
    assert json.loads(document)["phases"][0]["milestones"][0]["criteria"][0]["name"] == SCRIPT


# --- the node's text stays text ------------------------------------------------------------------------


def test_markdown_cells_cannot_break_the_table_or_reach_the_terminal() -> None:
    text = render_md(_card())
    assert "\x1b" not in text and "\x07" not in text
    row = next(line for line in text.splitlines() if "alert(1)" in line and line.startswith("| "))
    # five cells: every pipe but the table's own is escaped, and the newline is shown, not obeyed
    assert len(re.findall(r"(?<!\\)\|", row)) == 6, row
    assert "␤second line" in row and "␛\\]0;pwned␇" in row
    assert "<script>" not in text and "&lt;script>" in text
    assert r"\*load\* \[test\](javascript:alert(1))" in text  # no emphasis, no link
    assert "# Report card: gpu\\|01" in text


def test_html_escapes_every_node_string() -> None:
    page = render_html(_card())
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "mallory&lt;img src=x&gt;" in page
    assert "\x1b" not in page and "␛]0;pwned␇" in page
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"""\s(src|href)\s*=\s*["']|@import|url\(""", page)
    # verdicts carry their word, not only a colour
    assert "✘ FAIL" in page and "✔ PASS" in page and "NO-GO" in page


def test_period_parsing() -> None:
    assert parse_period("7d") == 7 * DAY and parse_period("90m") == 5400 and parse_period("2w") == 14 * DAY
    # read as a plan's `over` is: a fraction and "min" as well
    assert parse_period("1.5h") == 5400 and parse_period("10min") == 600
    for bad in ("7x", "", "d", "-1d", "0h", "400d", "1.5.h"):
        with pytest.raises(PeriodError):
            parse_period(bad)


# --- the command ---------------------------------------------------------------------------------------

DEMO = ("report-card", "--demo", "--seed", "7", "--at", str(int(T)), "--since", "7d")


@pytest.mark.parametrize("fmt", ["md", "json"])
def test_demo_card_matches_its_golden_file_byte_for_byte(fleetdeck, tmp_path: Path, fmt: str) -> None:
    outputs = []
    for run in (1, 2):
        out = tmp_path / f"card-{run}.{fmt}"
        result = fleetdeck(*DEMO, "--format", fmt, "-o", str(out))
        assert result.returncode == 0, result.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    golden = GOLDEN / f"demo.{fmt}"
    if UPDATE:
        golden.write_bytes(outputs[0])
    assert outputs[0] == golden.read_bytes(), f"regenerate with FLEETDECK_UPDATE_GOLDEN=1 ({golden})"


def test_demo_card_for_one_phase(fleetdeck, tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    result = fleetdeck(*DEMO, "--phase", "p3-scale-out", "-o", str(out))
    assert result.returncode == 0, result.stderr
    card = json.loads(out.read_text())
    assert [p["id"] for p in card["phases"]] == ["p3-scale-out"]
    assert card["phases"][0]["gate"]["decision"] == "no-go"


def test_a_fractional_since_is_accepted_as_a_plan_window_is(fleetdeck, tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    result = fleetdeck(*DEMO[:-1], "1.5h", "--format", "json", "-o", str(out))
    assert result.returncode == 0, result.stderr
    card = json.loads(out.read_text())
    assert (card["period_start"], card["period_end"]) == (T - 5400, T)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("--since", "7x"), 2, "--since '7x'"),
        (("--phase", "nope"), 1, "no such phase"),
        (("--format", "pdf"), 2, "invalid choice"),
    ],
)
def test_bad_input_is_one_line(
    fleetdeck, tmp_path: Path, args: tuple[str, ...], code: int, words: str
) -> None:
    out = tmp_path / "card.md"
    result = fleetdeck("report-card", "--demo", *args, "-o", str(out))
    assert result.returncode == code
    assert words in (result.stderr if code == 2 and "invalid" in words else one_line_error(result))
    assert not out.exists()


def test_an_unreachable_node_exits_3(fleetdeck, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[nodes]]\nname = "gone"\nbackend = "http"\nurl = "http://127.0.0.1:1"\n')
    out = tmp_path / "card.md"
    result = fleetdeck("--config", str(config), "report-card", "--node", "gone", "-o", str(out))
    assert result.returncode == 3, result.stderr
    assert "gone" in one_line_error(result) or "127.0.0.1" in result.stderr
    assert not out.exists()


# --- a real local node ---------------------------------------------------------------------------------

PLAN = """
name = "Report card test"
[[phases]]
id = "p1"
name = "Scale-out"
  [[phases.milestones]]
  id = "w7"
  name = "W7 Load test"
    [[phases.milestones.criteria]]
    name = "P95 latency"
    kpi = "latency_p95_ms"
    target = "< 120 ms"
    over = "10m"
    aggregate = "last"
    [[phases.milestones.criteria]]
    name = "Sign-off"
    target = "ops"
"""


def test_local_node_card_lists_plan_kpis_breaches_signoff_and_actions(fleetdeck, tmp_path: Path) -> None:
    (tmp_path / "config" / "fleetdeck").mkdir(parents=True)
    (tmp_path / "config" / "fleetdeck" / "config.toml").write_text('operator = "alice"\n')
    state = tmp_path / "node"
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    node = ("--state-dir", str(state))
    assert fleetdeck("plan", "apply", str(plan), *node).returncode == 0
    reported = fleetdeck("report", "--agent", "retriever-01", "--state", "running", *node)
    assert reported.returncode == 0, reported.stderr
    with Store(state) as store:
        base = float(int(store._clock()))
        for minute in range(51):  # 50 minutes of figures, 170 ms for ten of them, ending 10 min ago
            value = 170.0 if 20 <= minute <= 30 else 95.0
            store.record_kpis("retriever-01", {"latency_p95_ms": value}, at=base - 3600 + minute * 60)
        # now the live figure goes over and back: each read of the plan records the verdict's change
        for value in (170.0, 95.0):
            store.record_kpis("retriever-01", {"latency_p95_ms": value})
            assert fleetdeck("phases", *node).returncode == 0
        at = float(int(store._clock())) + 2
    signed = fleetdeck("gate", "sign", "p1", "--no-go", "--reason", "wait for the soak test", *node)
    assert signed.returncode == 0, signed.stderr
    out = tmp_path / "card.md"
    result = fleetdeck("report-card", *node, "--at", str(at), "--since", "1d", "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "### Phase 1 — Scale-out (`p1`)" in text
    assert "| P95 latency (`latency_p95_ms`) | < 120 ms | 95 ms" in text and "✅ PASS" in text
    assert "Sign-off: signed NO-GO by alice at " in text and "“wait for the soak test”" in text
    assert "| `latency_p95_ms` | retriever-01 | 53 | 95 ms | 170 ms | 170 ms | 95 ms |" in text
    lines = text.splitlines()
    (group,) = [line for line in lines if "| `latency_p95_ms` | retriever-01 | 1 |" in line]
    # fired once (the live blip held less than for_s: no breach of its own), 11 minutes over 150 ms, and
    # sampled every minute, as fine as the rule's for_s: no "±" on the durations
    cells = [cell.strip() for cell in group.strip("|").split("|")]
    assert cells[0] == "🔴 critical" and cells[6:] == ["11m00s", "11m00s", "peak 170 ms", "crit >= 150 ms"]
    assert "±" not in text and "KPI breach episodes" not in text  # one episode: no list of the latest
    (failed,) = [line for line in lines if line.startswith("| Criterion FAIL")]
    assert "| w7/P95 latency |" in failed
    assert "| alice | gate.sign | phase:p1 | wait for the soak test | ok" in text
    assert "| plan.apply |" in text


# --- the HTML in a real browser ------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH to load the HTML in")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@needs_chromium
def test_html_in_a_headless_browser_shows_tables_and_no_script(tmp_path: Path) -> None:
    page = tmp_path / "card.html"
    page.write_text(render_html(_card()), encoding="utf-8")
    dom = _chromium("--dump-dom", page.as_uri()).stdout
    assert dom.count("<tr>") >= 10  # criteria, KPIs, alerts and actions: headers and rows
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script" not in dom
    shot = tmp_path / "card.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    width, height, colours = _png_colours(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    assert len(colours) > 50, "the screenshot is blank"
    assert any(r > 150 and g < 90 and b < 90 for r, g, b in colours), "no FAIL red on the page"


@needs_chromium
def test_demo_card_html_renders(fleetdeck, tmp_path: Path) -> None:
    page = tmp_path / "demo.html"
    assert fleetdeck(*DEMO, "-o", str(page)).returncode == 0
    dom = _chromium("--dump-dom", page.as_uri()).stdout
    assert dom.count('class="phase"') == 5 and "NO-GO" in dom
    pdf = tmp_path / "demo.pdf"
    _chromium(f"--print-to-pdf={pdf}", page.as_uri())
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert pages >= 6, "printed, each of the 5 phases and the summaries starts a page"


def _png_colours(data: bytes) -> tuple[int, int, set[tuple[int, ...]]]:
    """(width, height, the distinct RGB colours) of an 8-bit RGB or RGBA PNG, as a browser writes one."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6)
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    previous = bytearray(stride)
    colours: set[tuple[int, ...]] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        if row % 8 == 0:  # every eighth row is plenty to tell a page from a blank one
            colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels * 4))
        previous = line
    return width, height, colours


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
