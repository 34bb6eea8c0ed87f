"""The screens the console can open on (``fleetdeck snapshot --screen``, FleetDeckApp's ``start_screen``):
one list, read by the command line for its choices and by the app for what each name opens."""

from __future__ import annotations

from typing import Literal, get_args

StartScreen = Literal["fleet", "node", "agent", "agents", "logs", "audit", "help"]
START_SCREENS: tuple[str, ...] = get_args(StartScreen)
