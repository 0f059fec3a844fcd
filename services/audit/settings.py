"""The audit service's settings, on top of the kit's (`OUTRIGGER_AUDIT_*`).

`OUTRIGGER_DATABASE_URL` picks the storage: PostgreSQL (`postgresql+psycopg://…`, schema `audit`,
monthly partitions) or the embedded SQLite file. `OUTRIGGER_AMQP_URL` the bus records arrive on
(queue `audit.records`, bound to `outrigger.audit`) and checkpoints leave by.

Checkpoints are signed with the Ed25519 key `OUTRIGGER_AUDIT_SIGNING_KEY` (the 32-byte private
key, base64), from the environment or the secrets directory (`outrigger_audit_signing_key`).
Without one, outside production, a development key is made once and kept in the data directory,
so every process of one checkout signs alike.
"""

from __future__ import annotations

import base64
import binascii
import os

from pydantic import Field, SecretStr

from outrigger import devsecrets
from outrigger.notes import NoteError, NoteSigner
from outrigger.settings import PREFIX, Settings, SettingsError

NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,200}$"
ORIGIN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}$"
DEV_SIGNING_KEY_FILE = "dev-audit-signing-key"
SIGNING_KEY_VARIABLE = f"{PREFIX}AUDIT_SIGNING_KEY"
NO_KEY_IN_PRODUCTION = (
    f"{SIGNING_KEY_VARIABLE}: production needs the checkpoint signing key "
    "(an Ed25519 private key: 32 bytes, base64)"
)


class AuditSettings(Settings):
    # a batch of 1,000 records with their data: larger than the kit's 1 MiB
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1)

    # checkpoints: origin `<audit_origin>/<tenant>`, signed by the key named `audit_origin`
    audit_origin: str = Field("outrigger.audit", pattern=ORIGIN_PATTERN)
    audit_signing_key: SecretStr | None = None
    # a tenant whose tree grew gets a checkpoint after this many records, or this many seconds
    audit_checkpoint_every: int = Field(1000, ge=1, le=10_000_000)
    audit_checkpoint_seconds: float = Field(10.0, gt=0, le=86_400)
    audit_checkpoint_exchange: str = Field("outrigger.checkpoints", pattern=NAME_PATTERN)

    # ingest from the bus: records gathered into batches of up to `batch_size` or `batch_wait`
    audit_ingest_enabled: bool = True
    audit_ingest_queue: str = Field("audit.records", pattern=NAME_PATTERN)
    audit_ingest_exchange: str = Field("outrigger.audit", pattern=NAME_PATTERN)
    audit_ingest_prefetch: int = Field(1000, ge=1, le=65_535)
    audit_ingest_batch_size: int = Field(500, ge=1, le=1000)
    audit_ingest_batch_wait_seconds: float = Field(0.05, gt=0, le=10)

    # retention: records older than this many months are dropped (0: kept forever); the tree's
    # hashes stay, so proofs and checkpoints remain valid
    audit_retention_months: int = Field(0, ge=0, le=1200)
    audit_retention_interval_seconds: float = Field(3600.0, gt=0, le=86_400 * 7)

    # the checkpoint and retention loops run on one elected replica
    audit_election_interval_seconds: float = Field(1.0, gt=0, le=60)
    # tenants are metric labels: the first this many have their own, later ones count as other
    audit_metric_tenant_limit: int = Field(100, ge=0, le=10_000)
    # connections for the per-subject keys of sensitive fields (PostgreSQL)
    audit_subject_keys_pool_size: int = Field(4, ge=1, le=100)

    def signer(self) -> NoteSigner:
        """The checkpoint signer; `SettingsError` for a bad key, or none in production."""
        configured = self.audit_signing_key.get_secret_value() if self.audit_signing_key else ""
        if configured.strip():
            return _signer(self.audit_origin, configured, SIGNING_KEY_VARIABLE)
        if self.production:
            raise SettingsError(NO_KEY_IN_PRODUCTION)
        path = self.data_dir / DEV_SIGNING_KEY_FILE
        text = devsecrets.development_secret(
            path,
            lambda: base64.b64encode(os.urandom(32)).decode(),
            what="audit checkpoint signing key",
            instead=SIGNING_KEY_VARIABLE,
        )
        return _signer(self.audit_origin, text, f"{SIGNING_KEY_VARIABLE} (development key {path})")


def _signer(name: str, encoded: str, where: str) -> NoteSigner:
    try:
        seed = base64.b64decode(encoded.strip(), validate=True)
        return NoteSigner.from_seed(name, seed)
    except (binascii.Error, ValueError) as exc:
        reason = str(exc) if isinstance(exc, NoteError) else "not base64"
        raise SettingsError(f"{where}: {reason}") from None
