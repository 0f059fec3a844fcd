"""The container health check: exit 0 when the service answers /readyz with 200.

`python /app/healthcheck.py [URL]`; without a URL it asks the service this container runs
(`outrigger serve SERVICE`, PID 1) on its port. Standard library only: it runs every few seconds.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 3.0


def own_url() -> str | None:
    """The /readyz URL of the service PID 1 serves, or None when PID 1 is not a server."""
    argv = Path("/proc/1/cmdline").read_bytes().decode().split("\0")
    if "serve" not in argv or argv.index("serve") + 1 >= len(argv):
        return None
    from outrigger import catalog

    port = os.environ.get("OUTRIGGER_PORT") or catalog.service(argv[argv.index("serve") + 1]).port
    return f"http://127.0.0.1:{port}/readyz"


def main(argv: list[str]) -> int:
    url = argv[0] if argv else own_url()
    if url is None:
        return 0  # a one-shot command (outrigger migrate) has nothing to probe
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
