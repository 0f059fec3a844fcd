"""`python -m services.notifications`: the same as `outrigger serve notifications`."""

from outrigger.cli import main

if __name__ == "__main__":
    main(["serve", "notifications"])
