"""``python -m console`` is the same as ``fleetdeck``."""

import sys

from console.cli.main import main

sys.exit(main())
