"""`python -m services.event_store`: the same as `outrigger serve event-store`."""

from outrigger.cli import main

if __name__ == "__main__":
    main(["serve", "event-store"])
