"""Screens: each is handed a DeckContext (console/context.py) and posts console/messages.py up."""
