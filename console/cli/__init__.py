"""The ``fleetdeck`` command line: ``main`` parses and dispatches, ``parser`` holds the grammar, ``exits``
the exit codes and CliError, ``arg_types`` the argument types, ``node_choice`` which nodes a command works
on, and one module per command family (console and snapshot, status, config, the per-node commands, the
local node's run/report/plan, node serve/token)."""
