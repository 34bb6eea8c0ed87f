"""Reusable Textual widgets, one per module. They render ``backends.model`` types and plain values handed
down by the console; they never talk to a backend."""
