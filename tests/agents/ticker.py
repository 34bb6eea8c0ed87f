"""Print a numbered line every ``INTERVAL`` seconds (default 0.05) until signalled: "tick 0", "tick 1", ..."""

import itertools
import sys
import time

interval = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
for i in itertools.count():
    print(f"tick {i}", flush=True)
    time.sleep(interval)
