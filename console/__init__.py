"""The fleetdeck console: everything a person (or a script) drives.

- ``console.cli``: the ``fleetdeck`` command line (parser, one module per command family, exit codes).
- ``console.core``: the plain-Python core both share, with no Textual and no argparse: config, paths,
  clock, node links, alerts and the alert book, the audit trail and its export, status, fleet setup.
- the Textual app: ``app`` (FleetDeckApp: wires node links to screens, runs the polling and log workers),
  ``context`` (what screens are handed), ``messages`` (what they send up), ``operator`` (the operator's
  actions), ``screens``, ``dialogs``, ``keys`` and ``snapshot`` (headless rendering).

The arrows point one way (import-linter contracts in pyproject.toml keep them): cli -> app -> core;
screens and dialogs never import the app.
"""
