"""Run for a moment, then fail with exit code 1 (for the on-failure restart policy)."""

import sys
import time

print("attempt starting", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
print("ERROR: giving up", flush=True)
sys.exit(1)
