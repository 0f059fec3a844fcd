"""Tests of the event-store service."""
