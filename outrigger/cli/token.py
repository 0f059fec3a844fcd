"""`outrigger token`: mint a bearer token from the configured (or development) key."""

from __future__ import annotations

import click


@click.command()
@click.option("--scope", "scopes", multiple=True, help="A scope to grant (repeat); default: all.")
@click.option("--ttl", default=3600, show_default=True, type=click.IntRange(1), help="Seconds.")
@click.option("--subject", default="developer", show_default=True)
@click.option("--channel", "channels", multiple=True, help="A channel pattern (repeat).")
def token(scopes: tuple[str, ...], ttl: int, subject: str, channels: tuple[str, ...]) -> None:
    """Print a signed JWT with the given scopes.

    The other commands read it from OUTRIGGER_TOKEN: export OUTRIGGER_TOKEN=$(outrigger token)
    """
    from outrigger.auth import ALL_SCOPES, TokenIssuer
    from outrigger.settings import load_settings

    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown:
        known = ", ".join(sorted(ALL_SCOPES))
        raise click.BadParameter(
            f"unknown scope {', '.join(unknown)}; known: {known}", param_hint="'--scope'"
        )
    issuer = TokenIssuer.from_settings(load_settings())
    click.echo(
        issuer.mint(subject, sorted(scopes or ALL_SCOPES), ttl, channels=list(channels) or None)
    )
