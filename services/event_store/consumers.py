"""The event store consumes no messages: it is where `outrigger.events` comes from (see
`usecases/relay.py`)."""
