"""A supervised agent that writes to the store without pause: a log line and a heartbeat in a tight loop,
through AgentReporter under its own reporting name (``NAME``, first argument). Whatever moment a freeze
lands on, this process is likely to be inside a write transaction."""

import itertools
import sys

from backends.local.reporter import AgentReporter

name = sys.argv[1]
with AgentReporter(name, verify=False) as agent:
    for i in itertools.count():
        agent.log("info", f"write {i}")
        agent.heartbeat(message=f"write {i}")
