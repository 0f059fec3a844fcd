"""The event-store service: streams with optimistic concurrency and one gap-free global log.

`domain` holds the models, rules and the storage port (`EventStore`); `adapters.postgres`
(with `PostgresSequencer`) and `adapters.sqlite` implement it. See README.md beside this file.
"""
