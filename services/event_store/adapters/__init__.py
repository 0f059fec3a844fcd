"""Adapters of the event-store port: `postgres` (production) and `sqlite` (embedded)."""
