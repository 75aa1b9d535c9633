"""Keys: the start-up check, fresh key material, and `cfm rotate-keys` (re-encrypt every sealed column; issue 8).

Rotation re-encrypts, table by table, every column whose type is `Sealed` (found in the metadata, so a sealed
column added later is rotated too) with the newest of ENCRYPTION_KEYS. It works in batches keyed by id, one
transaction each: interrupted, it is simply run again; a value already under the newest key is left alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Table, Text, bindparam, func, select, type_coerce, update

from cfm.extensions import db
from cfm.models.types import Sealed
from cfm.services.crypto import ConfigError, Crypto, generate_keys

REQUIRED_SETTINGS = ("SECRET_KEY", "ENCRYPTION_KEYS", "LOOKUP_KEY")
MIN_SECRET_LENGTH = 32  # characters of SECRET_KEY and LOOKUP_KEY (generate_keys() gives 44)
BATCH_SIZE = 500
GENERATE_HINT = "Generate them with `cfm keys generate` (prints fresh CFM_* lines) and keep them in a secret store."


def split_keys(value: Any) -> list[str]:
    """ENCRYPTION_KEYS as a list (comma-separated in the environment, newest first)."""
    if isinstance(value, str):
        return [key.strip() for key in value.split(",") if key.strip()]
    return [str(key).strip() for key in (value or []) if str(key).strip()]


def check_settings(config: Mapping[str, Any]) -> None:
    """Refuse to run without SECRET_KEY, ENCRYPTION_KEYS and LOOKUP_KEY, or with keys that cannot work."""
    missing = [f"CFM_{name}" for name in REQUIRED_SETTINGS if not config.get(name)]
    if missing:
        raise ConfigError(f"CFM will not start without {', '.join(missing)}. {GENERATE_HINT}")
    short = [f"CFM_{name}" for name in ("SECRET_KEY", "LOOKUP_KEY") if len(str(config[name])) < MIN_SECRET_LENGTH]
    if short:
        raise ConfigError(f"{', '.join(short)} must have at least {MIN_SECRET_LENGTH} characters. {GENERATE_HINT}")
    if str(config["LOOKUP_KEY"]) == str(config["SECRET_KEY"]):
        raise ConfigError(f"CFM_LOOKUP_KEY must differ from CFM_SECRET_KEY. {GENERATE_HINT}")
    Crypto(split_keys(config["ENCRYPTION_KEYS"]), str(config["LOOKUP_KEY"]).encode("utf-8"))  # raises ConfigError


def environment_lines(encryption_key_only: bool = False) -> list[str]:
    """Fresh settings as `CFM_NAME=value` lines (or one new Fernet key to put first in ENCRYPTION_KEYS)."""
    keys = generate_keys()
    if encryption_key_only:
        return [keys["ENCRYPTION_KEYS"]]
    return [f"CFM_{name}={keys[name]}" for name in REQUIRED_SETTINGS]


@dataclasses.dataclass
class RotationReport:
    """Counts per table: values seen, re-encrypted (or to re-encrypt on a dry run), unreadable; phones re-hashed."""

    seen: dict[str, int] = dataclasses.field(default_factory=dict)
    rotated: dict[str, int] = dataclasses.field(default_factory=dict)
    unreadable: dict[str, int] = dataclasses.field(default_factory=dict)
    rehashed: int = 0
    hash_only: int = 0  # opt-out rows that hold a phone hash but no phone: they cannot be re-hashed
    complete: bool = True  # False when stopped by max_batches

    def total(self, name: str) -> int:
        """Sum of one of the per-table counters."""
        return sum(getattr(self, name).values())


def sealed_tables() -> Iterator[tuple[Table, list[str]]]:
    """Every table with Sealed columns, and their names, from the models' metadata."""
    for table in db.metadata.sorted_tables:
        columns = [column.name for column in table.columns if isinstance(column.type, Sealed)]
        if columns:
            keys = list(table.primary_key.columns)
            if len(keys) != 1 or keys[0].name != "id":
                raise ConfigError(f"Table {table.name} has sealed columns but no single id key to page by.")
            yield table, columns


def _fernets(config: Mapping[str, Any]) -> tuple[Fernet, MultiFernet]:
    """The newest key alone, and all keys."""
    keys = split_keys(config.get("ENCRYPTION_KEYS"))
    if not keys:
        raise ConfigError(f"CFM_ENCRYPTION_KEYS is empty. {GENERATE_HINT}")
    fernets = [Fernet(key.encode()) for key in keys]
    return fernets[0], MultiFernet(fernets)


def _rotated(token: str, newest: Fernet, every: MultiFernet) -> str | None:
    """The token under the newest key, or None when it already is; InvalidToken when no key opens it."""
    raw = token.encode("ascii")
    try:
        newest.decrypt(raw)
    except InvalidToken:
        return every.rotate(raw).decode("ascii")
    return None


def rotate_keys(
    config: Mapping[str, Any],
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
    rehash_phones: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> RotationReport:
    """Re-encrypt every sealed value with the newest key, batch by batch; optionally re-hash phone lookups."""
    newest, every = _fernets(config)
    report = RotationReport()
    batches = 0
    for table, columns in sealed_tables():
        report.seen.setdefault(table.name, 0)
        report.rotated.setdefault(table.name, 0)
        report.unreadable.setdefault(table.name, 0)
        raw = [type_coerce(table.c[name], Text).label(name) for name in columns]
        after = 0
        while True:
            if max_batches is not None and batches >= max_batches:
                report.complete = False
                return report
            query = select(table.c.id, *raw).where(table.c.id > after).order_by(table.c.id).limit(batch_size)
            rows = db.session.execute(query).all()
            if not rows:
                break
            changes: list[dict[str, Any]] = []
            for row in rows:
                values = row._mapping
                new: dict[str, Any] = {}
                for name in columns:
                    token = values[name]
                    if token is None:
                        continue
                    report.seen[table.name] += 1
                    try:
                        rotated = _rotated(token, newest, every)
                    except InvalidToken:
                        report.unreadable[table.name] += 1
                        continue
                    if rotated is not None:
                        new[name] = rotated
                        report.rotated[table.name] += 1
                if new:
                    changes.append({"_id": values["id"], **{f"_v_{k}": v for k, v in new.items()}})
            if changes and not dry_run:
                _write(table, columns, changes)
            db.session.commit()
            batches += 1
            after = rows[-1].id
            if progress is not None:
                progress(table.name, report.seen[table.name], report.rotated[table.name])
    if rehash_phones:
        _rehash_phones(config, report, dry_run=dry_run, batch_size=batch_size)
    return report


def _write(table: Table, columns: list[str], changes: list[dict[str, Any]]) -> None:
    """Store the re-encrypted tokens as they are (typed as plain Text so that Sealed does not encrypt them again)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        names = tuple(sorted(key[3:] for key in change if key.startswith("_v_")))
        by_columns.setdefault(names, []).append(change)
    for names, group in by_columns.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({table.c[name]: bindparam(f"_v_{name}", type_=Text) for name in names})
        )
        db.session.execute(statement, group, execution_options={"synchronize_session": False})


def _rehash_phones(config: Mapping[str, Any], report: RotationReport, *, dry_run: bool, batch_size: int) -> None:
    """Recompute every reporter's phone_hash with the configured LOOKUP_KEY, from the sealed phone."""
    from cfm.models import Reporter
    from cfm.services.crypto import get_crypto

    crypto = get_crypto()
    table = Reporter.__table__
    report.hash_only = int(
        db.session.scalar(
            select(func.count()).select_from(table).where(table.c.phone.is_(None), table.c.phone_hash.is_not(None))
        )
        or 0
    )
    after = 0
    while True:
        query = (
            select(table.c.id, table.c.phone, table.c.phone_hash)
            .where(table.c.id > after, table.c.phone.is_not(None))
            .order_by(table.c.id)
            .limit(batch_size)
        )
        rows = db.session.execute(query).all()
        if not rows:
            break
        changes = []
        for row in rows:
            wanted = crypto.lookup_hash(row.phone)
            if row.phone_hash != wanted:
                changes.append({"_id": row.id, "_hash": wanted})
        report.rehashed += len(changes)
        if changes and not dry_run:
            statement = update(table).where(table.c.id == bindparam("_id")).values(phone_hash=bindparam("_hash"))
            db.session.execute(statement, changes, execution_options={"synchronize_session": False})
        db.session.commit()
        after = rows[-1].id

