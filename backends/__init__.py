"""The pluggable layer: the wire model, the Backend protocol, the registry and each backend.

Nothing here imports Textual or the console, so a backend can be tested without a terminal.
"""
