"""An agent that ignores SIGTERM: only SIGKILL ends it."""

import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM now", flush=True)
while True:
    time.sleep(0.2)
