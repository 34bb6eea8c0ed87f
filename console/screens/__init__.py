"""Screens: each is handed a DeckContext (console/context.py) and sends console/messages.py up."""
