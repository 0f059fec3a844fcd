"""`python -m services.cache`: the same as `outrigger serve cache`."""

from outrigger.cli import main

if __name__ == "__main__":
    main(["serve", "cache"])
