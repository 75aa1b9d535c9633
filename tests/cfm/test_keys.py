"""Keys (issue 8): `cfm rotate-keys` re-encrypts every sealed column, resumably; no start without keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import Text, select, type_coerce

from cfm import create_app
from cfm.cli import main
from cfm.extensions import db
from cfm.models import Case, CaseNote, Message, Programme, Reporter, User
from cfm.services.crypto import ConfigError, generate_keys
from cfm.services.intake import submit
from cfm.services.keys import check_settings, rotate_keys, sealed_tables
from cfm.services.triage import add_note
from channels.base import Contact, IntakeRequest
from tests.cfm.helpers import user

PHONE = "+254722333444"
NAME = "Wanjiru Keymaker"
TEXT = "The driver asked me for money to keep our seat on the bus to the airport."
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def use_keys(app: Flask, keys: str) -> None:
    """Reconfigure ENCRYPTION_KEYS and drop the cached Crypto."""
    app.config["ENCRYPTION_KEYS"] = keys
    app.extensions.pop("cfm_crypto", None)
    db.session.expire_all()


def raw_tokens() -> dict[tuple[str, str, int], str]:
    """Every sealed value as stored, keyed by (table, column, id)."""
    found = {}
    for table, columns in sealed_tables():
        query = select(table.c.id, *[type_coerce(table.c[name], Text).label(name) for name in columns])
        for row in db.session.execute(query):
            for name in columns:
                if row._mapping[name] is not None:
                    found[(table.name, name, row.id)] = row._mapping[name]
    return found


def read_everything() -> list[str | None]:
    """Every sealed value, decrypted through the models."""
    db.session.expire_all()
    values: list[str | None] = []
    for reporter in db.session.scalars(select(Reporter)):
        values += [reporter.name, reporter.phone, reporter.email]
    values += [case.text for case in db.session.scalars(select(Case))]
    values += [message.text for message in db.session.scalars(select(Message))]
    values += [note.body for note in db.session.scalars(select(CaseNote))]
    values += [u.totp_secret for u in db.session.scalars(select(User))]
    values += [p.twilio_auth_token for p in db.session.scalars(select(Programme))]
    return values


@pytest.fixture
def sealed_world(ctx: Flask, programme: Programme) -> Flask:
    """Three cases with reporters, a note, a TOTP secret and a programme Twilio token, all under key A."""
    use_keys(ctx, KEY_A)
    ctx.extensions["cfm_model"] = None  # no model: the cases stay pending, their text sealed (fail closed)
    focal = user("focal@example.org", "focal_point")
    focal.totp_secret = "JBSWY3DPEHPK3PXP"
    programme.twilio_auth_token = "programme-twilio-token"
    for number in range(3):
        contact = Contact(phone=f"{PHONE[:-1]}{number}", name=NAME, email=f"w{number}@example.org")
        case = submit(IntakeRequest(channel="sms", text=TEXT, provider_id=f"SMkey{number}", contact=contact)).case
        add_note(case, "Called back, she named the driver.", actor=focal)
    db.session.commit()
    return ctx


def test_rotation_covers_every_sealed_column_of_the_metadata(ctx: Flask) -> None:
    found = {(table.name, column) for table, columns in sealed_tables() for column in columns}
    for expected in (
        ("reporter", "name"),
        ("reporter", "phone"),
        ("reporter", "email"),
        ("case", "text_sealed"),
        ("message", "text_sealed"),
        ("case_note", "body"),
        ("case_event", "reason"),
        ("user", "totp_secret"),
        ("programme", "twilio_auth_token"),
    ):
        assert expected in found


def test_after_rotation_the_old_key_can_be_dropped(sealed_world: Flask) -> None:
    before = read_everything()
    assert PHONE[:-1] + "0" in before and TEXT in before and "programme-twilio-token" in before
    tokens = raw_tokens()
    assert len(tokens) >= 3 * 3 + 3 + 3 + 3 + 2  # reporters, cases, messages, notes, totp + twilio token
    use_keys(sealed_world, f"{KEY_B},{KEY_A}")
    report = rotate_keys(sealed_world.config, batch_size=2)
    assert report.complete and report.total("rotated") == len(tokens) and report.total("unreadable") == 0
    new_tokens = raw_tokens()
    assert set(new_tokens) == set(tokens)
    for key, token in new_tokens.items():
        assert token != tokens[key]
        Fernet(KEY_B.encode()).decrypt(token.encode())  # every value opens with the new key alone
    use_keys(sealed_world, KEY_B)
    assert read_everything() == before
    # Run again: everything is under the newest key already, nothing is rewritten.
    again = rotate_keys(sealed_world.config)
    assert again.total("rotated") == 0 and raw_tokens() == new_tokens


def test_an_interrupted_rotation_continues_where_it_stopped(sealed_world: Flask) -> None:
    before = read_everything()
    total = len(raw_tokens())
    use_keys(sealed_world, f"{KEY_B},{KEY_A}")
    first = rotate_keys(sealed_world.config, batch_size=1, max_batches=2)  # "interrupted" after two batches
    assert not first.complete and 0 < first.total("rotated") < total
    use_keys(sealed_world, KEY_B)
    with pytest.raises(ConfigError):  # not finished: the old key is still needed
        read_everything()
    db.session.rollback()
    use_keys(sealed_world, f"{KEY_B},{KEY_A}")
    second = rotate_keys(sealed_world.config, batch_size=1)
    assert second.complete and first.total("rotated") + second.total("rotated") == total
    use_keys(sealed_world, KEY_B)
    assert read_everything() == before


def test_a_dry_run_counts_and_changes_nothing(sealed_world: Flask) -> None:
    tokens = raw_tokens()
    use_keys(sealed_world, f"{KEY_B},{KEY_A}")
    report = rotate_keys(sealed_world.config, dry_run=True)
    assert report.total("rotated") == len(tokens)
    assert raw_tokens() == tokens


def test_a_value_no_key_opens_is_reported_not_destroyed(sealed_world: Flask) -> None:
    tokens = raw_tokens()
    use_keys(sealed_world, KEY_B)  # key A forgotten too early
    report = rotate_keys(sealed_world.config)
    assert report.total("unreadable") == len(tokens) and report.total("rotated") == 0
    assert raw_tokens() == tokens


def test_rotate_keys_command_prints_progress_and_totals(sealed_world: Flask) -> None:
    use_keys(sealed_world, f"{KEY_B},{KEY_A}")
    runner = sealed_world.test_cli_runner()
    dry = runner.invoke(args=["rotate-keys", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "reporter: 9 values checked, 9 to re-encrypt" in dry.output and "would be re-encrypted" in dry.output
    done = runner.invoke(args=["rotate-keys", "--batch-size", "2"])
    assert done.exit_code == 0 and "re-encrypted." in done.output
    use_keys(sealed_world, KEY_B)
    assert "0 re-encrypted" in runner.invoke(args=["rotate-keys"]).output


def test_rehash_phones_after_a_new_lookup_key(sealed_world: Flask) -> None:
    from cfm.services.crypto import get_crypto

    old_hashes = {r.id: r.phone_hash for r in db.session.scalars(select(Reporter))}
    sealed_world.config["LOOKUP_KEY"] = generate_keys()["LOOKUP_KEY"]
    use_keys(sealed_world, KEY_A)
    report = rotate_keys(sealed_world.config, rehash_phones=True)
    assert report.rehashed == 3
    for reporter in db.session.scalars(select(Reporter)):
        assert reporter.phone_hash != old_hashes[reporter.id]
        assert reporter.phone_hash == get_crypto().lookup_hash(str(reporter.phone))
    assert rotate_keys(sealed_world.config, rehash_phones=True).rehashed == 0


# --- refusing to start without keys ---------------------------------------------------------------------------


def production_config(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """A configuration without TESTING."""
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite'}", **settings}


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ENCRYPTION_KEYS", "LOOKUP_KEY"])
def test_the_app_refuses_to_start_without_a_key(tmp_path: Path, missing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SECRET_KEY", "ENCRYPTION_KEYS", "LOOKUP_KEY"):
        monkeypatch.delenv(f"CFM_{name}", raising=False)
    keys = generate_keys()
    del keys[missing]
    with pytest.raises(ConfigError) as info:
        create_app(production_config(tmp_path, **keys))
    assert f"CFM_{missing}" in str(info.value) and "cfm keys generate" in str(info.value)


def test_the_app_refuses_weak_or_malformed_keys(tmp_path: Path) -> None:
    keys = generate_keys()
    for bad, name in (
        ({"SECRET_KEY": "dev"}, "CFM_SECRET_KEY"),
        ({"LOOKUP_KEY": keys["SECRET_KEY"]}, "CFM_LOOKUP_KEY"),
        ({"ENCRYPTION_KEYS": "not-a-fernet-key"}, "CFM_ENCRYPTION_KEYS"),
    ):
        with pytest.raises(ConfigError) as info:
            check_settings({**keys, **bad})
        assert name in str(info.value)


def test_the_app_starts_with_keys_and_under_testing_without(tmp_path: Path) -> None:
    assert create_app(production_config(tmp_path, **generate_keys())).config["SESSION_COOKIE_SECURE"] is True
    assert create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 't.sqlite'}"}).testing


def test_keys_generate_prints_lines_the_app_starts_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(main, ["keys", "generate"])
    assert result.exit_code == 0
    settings = dict(line.split("=", 1) for line in result.output.splitlines())
    assert set(settings) == {"CFM_SECRET_KEY", "CFM_ENCRYPTION_KEYS", "CFM_LOOKUP_KEY"}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    app = create_app(production_config(tmp_path))
    assert app.config["ENCRYPTION_KEYS"] == settings["CFM_ENCRYPTION_KEYS"]
    one = CliRunner().invoke(main, ["keys", "generate", "--encryption-key-only"]).output.strip()
    Fernet(one.encode())  # a valid Fernet key


def test_the_cli_without_keys_says_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SECRET_KEY", "ENCRYPTION_KEYS", "LOOKUP_KEY", "TESTING"):
        monkeypatch.delenv(f"CFM_{name}", raising=False)
    monkeypatch.setenv("CFM_DATABASE_URL", f"sqlite:///{tmp_path / 'c.sqlite'}")
    result = CliRunner().invoke(main, ["init-db"])
    assert result.exit_code != 0
    assert "CFM_SECRET_KEY" in result.output and "cfm keys generate" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "c.sqlite").exists()



def test_the_classifier_commands_work_without_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # DESIGN.md: `cfm classify` works right after `pip install`; it serves nothing and seals nothing.
    for name in ("SECRET_KEY", "ENCRYPTION_KEYS", "LOOKUP_KEY", "TESTING"):
        monkeypatch.delenv(f"CFM_{name}", raising=False)
    monkeypatch.setenv("CFM_DATABASE_URL", f"sqlite:///{tmp_path / 'c.sqlite'}")
    result = CliRunner().invoke(main, ["classify"], input='{"text": "when is our flight to Canada?", "id": 7}\n')
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.splitlines()[-1])
    assert line["id"] == 7 and line["queue"] in ("general", "restricted")
    assert CliRunner().invoke(main, ["run"]).exit_code != 0  # serving still needs the keys
