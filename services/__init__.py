"""One package per service; each imports the kit and nothing of another service."""
