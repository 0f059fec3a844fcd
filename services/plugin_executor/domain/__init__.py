"""The plugin executor's domain: models, errors and ports. No I/O lives here."""
