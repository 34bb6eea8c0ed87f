"""Report cards: a node's plan, KPIs, alerts and operator actions over a period, as the weekly report cards
a fleet's managers read (``fleetdeck report-card``).

:mod:`.build` gathers what the node holds into a :class:`.card.ReportCard`; :mod:`.markdown`, :mod:`.html`
and :mod:`.card` (JSON) write it. Everything here is plain data and text: the same card, the same bytes.
"""
