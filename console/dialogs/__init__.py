"""Modal dialogs for operator actions: each previews what it will touch and returns what was decided."""
