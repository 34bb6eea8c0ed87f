"""An agent that says it is ready and then sleeps until it is signalled; ``--child`` also starts a child."""

import os
import subprocess
import sys
import time

child = None
if "--child" in sys.argv:
    child = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.2)"])
print(f"ready pid={os.getpid()} child={child.pid if child else 0}", flush=True)
while True:
    time.sleep(0.2)
