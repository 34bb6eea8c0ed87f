"""What the screens hand the KPI widgets: each figure graded by the node's rules (console/core/kpi_rules),
dated and traced by its history (the NodeLink's KpiHistory). The widgets format and colour; this judges.

A rule judges the figure :func:`kpi_rules.judged_figure` names: a gauge's value, a counter's rate per
second. So do the history's series and trends, so a line, a trend and a breach are always in one unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backends.kpis import convert, percentile
from backends.model import Agent, Kpi
from console.core.kpi_rules import (
    COUNTER_UNIT,
    Limits,
    ResolvedRule,
    headline_kpi,
    judged_figure,
    rule_book,
)
from console.core.node_link import NodeLink
from widgets.agents_table import AgentsTable, KpiGrader
from widgets.kpi_list import KpiLine
from widgets.kpi_panel import KpiSummary


def _judged(kpi: Kpi) -> tuple[float, str] | None:
    return judged_figure(kpi.value, kpi.unit, kpi.kind, kpi.rate_per_s)


def rule_of(link: NodeLink, agent: Agent | None, name: str) -> ResolvedRule | None:
    """The rule for KPI ``name`` of ``agent`` on ``link`` (None: the node's own, no label overrides)."""
    return rule_book(link.kpi_rules).for_agent(link.name, agent.labels if agent else {}).get(name)


def limits_of(link: NodeLink, rule: ResolvedRule | None, unit: str) -> Limits | None:
    return None if rule is None else rule_book(link.kpi_rules).limits(rule, unit)


def grade(link: NodeLink, agent: Agent, kpi: Kpi) -> str | None:
    """ "warning", "critical" or None for ``agent``'s latest figure of ``kpi``."""
    rule = rule_of(link, agent, kpi.name)
    figure = _judged(kpi) if rule is not None else None
    if figure is None:
        return None
    limits = limits_of(link, rule, figure[1])
    return None if limits is None else limits.grade(figure[0])


def grader(links: Mapping[str, NodeLink]) -> KpiGrader:
    """The agents table's grader: each row judged by its own node's rules."""

    def judge(node: str, agent: Agent, kpi: Kpi) -> str | None:
        link = links.get(node)
        return None if link is None else grade(link, agent, kpi)

    return judge


def set_table_headline(
    table: AgentsTable, links: Mapping[str, NodeLink], configured: str | None, agents: Sequence[Agent]
) -> None:
    """Give ``table`` its KPI column: the config's headline KPI, else the one the rules and agents imply.
    Chosen once: a column that came and went with the agents reporting would shift every other column."""
    if table.headline is not None:
        return
    name = configured
    if name is None:
        rules = next((link.kpi_rules for link in links.values()), ())
        name = headline_kpi(rules, agents)
    if name != table.headline:
        table.set_headline(name, grader(links) if name is not None else None)


def agent_lines(link: NodeLink, agent: Agent) -> list[KpiLine]:
    """Every KPI of ``agent``, with its rule, grade, breach start and recent figures."""
    lines = []
    for kpi in agent.kpis:
        figure = _judged(kpi)
        unit = figure[1] if figure is not None else kpi.unit
        rule = rule_of(link, agent, kpi.name)
        limits = limits_of(link, rule, unit)
        level = limits.grade(figure[0]) if limits is not None and figure is not None else None
        since = link.kpis.breach_since(agent.id, kpi.name, limits, level) if limits and level else None
        history = tuple(value for _, value in link.kpis.series(agent.id, kpi.name))
        lines.append(
            KpiLine(
                kpi=kpi,
                rule=rule,
                unit=unit,
                grade=level,
                since=since,
                history=history,
                lines=(limits.warn, limits.crit) if limits is not None else (),
            )
        )
    return lines


def fleet_summaries(link: NodeLink, agents: Sequence[Agent]) -> list[KpiSummary]:
    """One row per KPI the agents report: the spread of their judged figures now, in the first reporter's
    unit (others converted; one that cannot be is left out), and how many breach their own rules.

    Runs at every refresh while the panel is on screen, over every figure (5,000 agents x 5 KPIs): one
    rule lookup per agent (cached per node and labels) and per figure a dict lookup, a compare and, where
    a rule judges it, the lines' cached grade."""
    book = rule_book(link.kpi_rules)
    node = link.name
    figures: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    rate_of: dict[str, str] = {}  # a counter's own unit: its figures here are its rate per second
    counts: dict[str, list[int]] = {}  # name -> [critical, warning]
    limits_for: dict[tuple[ResolvedRule, str], Limits | None] = {}
    for agent in agents:
        if not agent.kpis:
            continue
        rules = book.for_agent(node, agent.labels)
        for kpi in agent.kpis:
            name = kpi.name
            if kpi.kind == "counter":
                if kpi.rate_per_s is None:
                    continue
                value, unit_in = kpi.rate_per_s, COUNTER_UNIT
                rate_of.setdefault(name, kpi.unit)
            else:
                value, unit_in = kpi.value, kpi.unit
            unit = units.setdefault(name, unit_in)
            if unit_in != unit:
                converted = convert(value, unit_in, unit)
                if converted is None:
                    continue
                value = converted
            held = figures.get(name)
            if held is None:
                figures[name] = [value]
                counts[name] = [0, 0]
            else:
                held.append(value)
            rule = rules.get(name)
            if rule is None:
                continue
            key = (rule, unit)
            if key not in limits_for:
                limits_for[key] = book.limits(rule, unit)
            limits = limits_for[key]
            level = limits.grade(value) if limits is not None else None
            if level is not None:
                counts[name][0 if level == "critical" else 1] += 1
    rows = []
    for name, values in figures.items():
        unit = units[name]
        rule = rule_of(link, None, name)
        limits = limits_of(link, rule, unit)
        critical, warning = counts[name]
        ordered = sorted(values)  # once, for every percentile
        rows.append(
            KpiSummary(
                name=name,
                unit=unit,
                rate_of=rate_of.get(name),
                reporting=len(values),
                low=ordered[0],
                p50=percentile(ordered, 50),
                p95=percentile(ordered, 95),
                high=ordered[-1],
                rule=rule,
                rule_unit=unit,
                critical=critical,
                warning=warning,
                trend=tuple(link.kpis.fleet_trend(name)),
                lines=(limits.warn, limits.crit) if limits is not None else (),
            )
        )
    return rows
