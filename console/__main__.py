"""``python -m console`` is the same as ``fleetdeck``."""

import sys

from console.cli import main

sys.exit(main())
