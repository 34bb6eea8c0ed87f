"""One run of one scenario, in a process of its own: ``python -m benchmarks.run_one NAME --out FILE``.

The figures go to ``--out`` as JSON (numbers are figures, strings are notes such as "htop not installed").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.scenarios import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--quick", action="store_true", help="seconds instead of minutes: keeps it working")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    figures = load(args.name).measure(args.quick)
    args.out.write_text(json.dumps(figures, indent=2, allow_nan=True))


if __name__ == "__main__":
    main()
