"""What the console knows without a terminal: config and paths, the clock, node links (a backend plus what
the console holds of it), alerts and the alert book, the audit trail and its export, fleet status and fleet
setup. No Textual and no argparse here, so the command line, the app and the tests share it as plain
Python."""
