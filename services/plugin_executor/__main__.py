"""`python -m services.plugin_executor`: the same as `outrigger serve plugin-executor`."""

from outrigger.cli import main

if __name__ == "__main__":
    main(["serve", "plugin-executor"])
