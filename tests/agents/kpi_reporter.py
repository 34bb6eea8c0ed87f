"""A service that reports its p95 latency as a KPI on every JSON log line, every ``INTERVAL`` seconds.

The figure it reports is read from the file ``CONTROL`` each time (a test writes 90, then 180, then 90),
so a test decides what the service "measures" without any fake in the path from it to the console.

    python kpi_reporter.py CONTROL [INTERVAL]
"""

import json
import sys
import time
from pathlib import Path

control = Path(sys.argv[1])
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
while True:
    try:
        latency = float(control.read_text().strip())
    except (OSError, ValueError):
        latency = None
    if latency is not None:
        line = {"level": "info", "msg": f"served at p95 {latency:g} ms", "kpis": {"latency_p95_ms": latency}}
        print(json.dumps(line), flush=True)
    time.sleep(interval)
