"""Print COUNT lines in several styles (JSON with a level, "ERROR: ..." prefixes, plain text), then exit 0.

Line i of stdout is, by i % 4: a JSON info line, a JSON warning line, an "ERROR: ..." line, a plain line.
"""

import json
import sys

count = int(sys.argv[1])
for i in range(count):
    kind = i % 4
    if kind == 0:
        print(json.dumps({"level": "info", "msg": f"json info {i}", "i": i}))
    elif kind == 1:
        print(json.dumps({"level": "warn", "msg": f"json warning {i}", "i": i}))
    elif kind == 2:
        print(f"ERROR: plain error {i}")
    else:
        print(f"plain text {i}")
print("WARNING: one line on stderr", file=sys.stderr)
