"""`python -m services.audit`: the same as `outrigger serve audit`."""

from outrigger.cli import main

if __name__ == "__main__":
    main(["serve", "audit"])
