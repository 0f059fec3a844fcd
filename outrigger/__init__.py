"""Outrigger: the shared kit every service is built on."""

__version__ = "0.1.0"
