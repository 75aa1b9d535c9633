"""The `cfm` commands, run the way an operator runs them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from cfm import create_app
from cfm.cli import main
from cfm.extensions import db
from cfm.models import PhoneNumber, Programme, User
from cfm.services.search import is_fts_table
from tests.conftest import POSTGRES_URL, make_config, pg_url


@pytest.fixture
def empty_app(backend: str, tmp_path: Path) -> Any:
    """An app on a database with no tables at all (own schema on PostgreSQL)."""
    schema = None
    if backend == "postgresql":
        schema = f"cfm_init_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    app = create_app(make_config(backend, tmp_path, schema))
    yield app
    with app.app_context():
        db.engine.dispose()
    if schema:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def test_init_db_creates_the_schema_the_models_describe_and_is_repeatable(empty_app: Flask) -> None:
    runner = empty_app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.output
    with empty_app.app_context(), db.engine.connect() as conn:
        # The SQLite FTS5 tables of the search are made by the migration, not declared as models.
        options = {"include_name": lambda name, kind, parent: kind != "table" or not is_fts_table(name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=options), db.metadata)
        assert diff == []
        assert {"case", "message", "reporter", "programme", "user", "audit_event"} <= set(
            sa.inspect(conn).get_table_names()
        )
        # Expression and partial indexes are invisible to compare_metadata on SQLite: check them by name.
        sqlite = conn.dialect.name == "sqlite"
        listing = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        if sqlite:
            listing = "SELECT name FROM sqlite_master WHERE type = 'index'"
        names = conn.execute(sa.text(listing)).scalars()
        assert {"ix_case_open_due", "ix_case_queue_programme_due"} - set(names) == set()


def test_programmes_create_with_numbers(runner: FlaskCliRunner, app: Flask) -> None:
    result = runner.invoke(
        args=[
            "programmes",
            "create",
            "afg-evac",
            "--name",
            "Afghanistan evacuation",
            "--number",
            "+93700000001",
            "--number",
            "+14155550100",
            "--language",
            "fa_AF",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        programme = db.session.scalars(select(Programme)).one()
        assert (programme.slug, programme.default_language) == ("afg-evac", "fa_AF")
        assert sorted(db.session.scalars(select(PhoneNumber.number))) == ["+14155550100", "+93700000001"]
    listed = runner.invoke(args=["programmes", "list"])
    assert "afg-evac" in listed.output and "+93700000001" in listed.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad Slug", "--name", "x"], "slug"),
        (["ok", "--name", "x", "--number", "0700 000 000"], "E.164"),
    ],
)
def test_programmes_create_refuses_bad_input(runner: FlaskCliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(args=["programmes", "create", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_users_create_reads_the_password_from_stdin(runner: FlaskCliRunner, app: Flask) -> None:
    runner.invoke(args=["programmes", "create", "kenya", "--name", "Kenya"])
    result = runner.invoke(
        args=["users", "create", "Focal@Example.org", "--role", "focal_point", "--programme", "kenya"],
        input="a long enough secret\n",
    )
    assert result.exit_code == 0, result.output
    assert "a long enough secret" not in result.output
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert user.email == "focal@example.org"
        assert user.roles == ["focal_point"]
        assert [p.slug for p in user.programmes] == ["kenya"]
        assert user.password_hash.startswith("$argon2id$")
        assert user.check_password("a long enough secret") and not user.check_password("wrong")


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["x@example.org", "--role", "officer"], "short\n", "at least"),
        (
            ["x@example.org", "--role", "officer", "--programme", "nowhere"],
            "a long enough secret\n",
            "Unknown programme",
        ),
        (["not-an-email", "--role", "officer"], "a long enough secret\n", "email"),
        (["x@example.org", "--role", "superuser"], "a long enough secret\n", "superuser"),
    ],
)
def test_users_create_refuses_bad_input(runner: FlaskCliRunner, args: list[str], password: str, message: str) -> None:
    result = runner.invoke(args=["users", "create", *args], input=password)
    assert result.exit_code != 0
    assert message in result.output


def test_users_create_refuses_a_duplicate(runner: FlaskCliRunner) -> None:
    for expected in (0, 1):
        result = runner.invoke(
            args=["users", "create", "a@example.org", "--role", "admin"], input="a long enough secret\n"
        )
        assert result.exit_code == expected
    assert "already exists" in result.output


def test_classify_reads_json_and_plain_lines_keeps_order_and_reports_bad_lines(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"id": 1, "text": "The driver asked me to sleep with him to keep my seat on the bus"}),
                "What time is the flight to Toronto tomorrow?",
                '{"id": 3, "text": broken json',
                json.dumps({"id": 4, "text": "شكرا جزيلا لفريق الاستقبال في المطار"}),
                "",
                json.dumps({"id": 5, "note": "no text here"}),
            ]
        ),
        encoding="utf-8",
    )
    result = runner.invoke(args=["classify", str(source)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5
    first, second, bad, fourth, no_text = lines
    assert first["id"] == 1 and first["sensitive"] is True and first["queue"] == "restricted"
    assert first["category"] == "sexual_exploitation_abuse"
    assert second["category"] == "information_request" and second["queue"] == "general"
    assert second["language"] == "en" and second["sensitive"] is False
    assert bad == {"line": 3, "error": "invalid JSON"}
    assert fourth["id"] == 4 and fourth["language"] == "ar" and fourth["category"] == "appreciation"
    assert no_text["line"] == 6 and "text" in no_text["error"]
    assert set(first) >= {"category", "confidence", "sensitive", "queue", "language"}
    assert "line 3: invalid JSON" in result.stderr


def test_classify_reads_stdin(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["classify"], input="thank you for the help at the airport\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["category"] == "appreciation"


def test_demo_builds_a_database_with_users_and_sample_cases(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--no-serve", "--directory", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo.sqlite").exists()
    for role in ("officer", "focal_point", "admin"):
        assert role in result.output
    assert "sample cases" in result.output
    count = int(result.output.split(" sample cases")[0].rsplit("\n", 1)[-1])
    assert count >= 24
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'demo.sqlite'}")
    with engine.connect() as conn:
        queues = dict(conn.execute(sa.text('SELECT queue, count(*) FROM "case" GROUP BY queue')).all())
        plain = conn.execute(
            sa.text("SELECT count(*) FROM \"case\" WHERE text_plain IS NOT NULL AND queue != 'general'")
        ).scalar()
    engine.dispose()
    assert queues.get("general", 0) > 0 and queues.get("restricted", 0) > 0
    assert plain == 0


def test_worker_needs_redis_url(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code != 0
    assert "CFM_REDIS_URL" in result.output


def test_pg_url_helper_targets_the_schema() -> None:
    assert pg_url("abc").endswith("search_path%3Dabc")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_train_with_corrections_writes_an_instance_model_that_the_app_then_uses(
    runner: FlaskCliRunner, app: Flask, tmp_path: Path
) -> None:
    from cfm.services.classification import get_model, trained_model_path
    from tests.cfm.helpers import send

    # An instance folder of this test's own: the checkout's instance/model.skops would be preferred to the shipped
    # model by every later app made in this tree (other tests, `cfm demo`).
    app.instance_path = str(tmp_path / "instance")
    (tmp_path / "instance").mkdir()
    with app.app_context():
        runner.invoke(args=["programmes", "create", "kenya", "--name", "Kenya", "--default"])
        case = send("The bus to the airport is too cold at night, please bring blankets").case
        case.category, case.category_source = "suggestion", "officer"
        db.session.commit()
        target = trained_model_path()
    result = runner.invoke(args=["train", "--include-corrections"])
    assert result.exit_code == 0, result.output
    assert "(1 corrections included)" in result.output
    assert target.exists()
    with app.app_context():
        app.extensions.pop("cfm_model", None)
        model = get_model()
        assert model is not None and model.version in result.output


def test_surveys_publish_list_and_unpublish(runner: FlaskCliRunner, client: Any) -> None:
    runner.invoke(args=["programmes", "create", "kenya", "--name", "Kenya", "--default"])
    shipped = runner.invoke(args=["surveys", "list"])
    assert "arrival" in shipped.output.split()
    result = runner.invoke(args=["surveys", "publish", "arrival", "--programme", "kenya"])
    assert result.exit_code == 0, result.output
    assert "/p/kenya/survey/arrival" in runner.invoke(args=["surveys", "list", "--programme", "kenya"]).output
    assert client.get("/p/kenya/survey/arrival").status_code == 200
    assert runner.invoke(args=["surveys", "publish", "no-such-survey", "--programme", "kenya"]).exit_code != 0
    assert runner.invoke(args=["surveys", "publish", "arrival", "--programme", "nowhere"]).exit_code != 0
    assert runner.invoke(args=["surveys", "unpublish", "arrival", "--programme", "kenya"]).exit_code == 0
    assert client.get("/p/kenya/survey/arrival").status_code == 404
