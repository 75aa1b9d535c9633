"""`cfm demo`: a fresh database with generated keys, demo users and realistic sample cases."""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path

from flask import Flask

from cfm.services.crypto import generate_keys
from channels.base import Contact, IntakeRequest
from classifier.categories import CATEGORIES

CORPUS_DIR = Path(__file__).resolve().parent.parent / "classifier" / "data" / "corpus"
DEMO_ROLES = (
    ("officer", "officer@demo.cfm.example"),
    ("focal_point", "focal@demo.cfm.example"),
    ("admin", "admin@demo.cfm.example"),
)
SAMPLES_PER_LANGUAGE = 4


def sample_messages(limit_per_language: int = SAMPLES_PER_LANGUAGE) -> list[dict[str, str]]:
    """A few corpus lines per language, rotating through the categories so that every one appears."""
    chosen: list[dict[str, str]] = []
    files = [path for path in sorted(CORPUS_DIR.glob("*.jsonl")) if "translit" not in path.name]
    for index, path in enumerate(files):
        by_category: dict[str, dict[str, str]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                by_category.setdefault(item["category"], item)
        for offset in range(limit_per_language):
            category = CATEGORIES[(index * limit_per_language + offset) % len(CATEGORIES)]
            if category in by_category:
                chosen.append(by_category[category])
    return chosen


def build_demo(directory: str | None = None) -> tuple[Flask, list[tuple[str, str, str]], str]:
    """Create the demo app and data; returns the app, (email, role, password) triples and a summary."""
    from cfm import create_app
    from cfm.extensions import db
    from cfm.services.admin import create_programme, create_user, upgrade_schema
    from cfm.services.intake import submit

    folder = Path(directory or tempfile.mkdtemp(prefix="cfm-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "demo.sqlite"
    for stale in folder.glob("demo.sqlite*"):
        stale.unlink()
    app = create_app({"DATABASE_URL": f"sqlite:///{database}", "DEMO": True, "REQUIRE_2FA": False, **generate_keys()})
    accounts: list[tuple[str, str, str]] = []
    with app.app_context():
        upgrade_schema()
        programme = create_programme(
            "demo", "Demo resettlement programme", ["+15005550006"], language="en", is_default=True
        )
        from cfm.services.surveys import library, publish_survey

        for slug in sorted(library()):
            publish_survey(programme, slug)
        from cfm.services.reply_templates import seed_defaults

        seed_defaults()  # reply templates in en, fr, ar for all programmes (issue 6)
        for role, email in DEMO_ROLES:
            password = secrets.token_urlsafe(12)
            create_user(email, password, [role])
            accounts.append((email, role, password))
        messages = sample_messages()
        for number, item in enumerate(messages):
            channel = item.get("channel", "web")
            contact = Contact(phone=f"+1500555{number:04d}") if channel in ("sms", "whatsapp") else Contact()
            request = IntakeRequest(
                channel=channel,
                text=item["text"],
                programme="demo",
                provider_id=f"demo-{number}",
                contact=contact,
                consent_to_contact=not contact.is_empty(),
            )
            submit(request)
        from sqlalchemy import func, select

        from cfm.models import Case

        counts = dict(db.session.execute(select(Case.queue, func.count()).group_by(Case.queue)).all())
    summary = f"{len(messages)} sample cases: " + ", ".join(f"{q} {n}" for q, n in sorted(counts.items()))
    return app, accounts, summary
