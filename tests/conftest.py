"""Shared fixtures (flaskr style): app, client, runner; every database test runs on SQLite AND PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from cfm import create_app
from cfm.services.crypto import generate_keys

POSTGRES_URL = os.environ.get("CFM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CFM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of our own for this test session; fails (never skips) when PostgreSQL is down."""
    engine = sa.create_engine(POSTGRES_URL)
    schema = f"cfm_test_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def pg_url(schema: str) -> str:
    """The PostgreSQL URL with the search path set to the test schema."""
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def make_config(backend: str, tmp_path: Path, pg_schema_name: str | None, **extra: Any) -> dict[str, Any]:
    """Test configuration for one backend with freshly generated keys."""
    url = f"sqlite:///{tmp_path / 'cfm.sqlite'}" if backend == "sqlite" else pg_url(str(pg_schema_name))
    return {
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "DATABASE_URL": url,
        "REDIS_URL": None,
        **generate_keys(),
        **extra,
    }


_pg_tables_created: set[str] = set()


def reset_database(app: Flask, backend: str) -> None:
    """Fresh tables: created on SQLite, created once then truncated on PostgreSQL."""
    from cfm.extensions import db

    with app.app_context():
        if backend == "sqlite":
            db.create_all()
            return
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        if url not in _pg_tables_created:
            db.create_all()
            _pg_tables_created.add(url)
        names = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
        db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend this test runs on."""
    return str(request.param)


@pytest.fixture
def app(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Flask]:
    """A fresh app and database per test, on SQLite and on PostgreSQL."""
    schema = request.getfixturevalue("pg_schema") if backend == "postgresql" else None
    overrides = getattr(request, "param", None) or {}
    application = create_app(make_config(backend, tmp_path, schema, **overrides))
    application.config["BACKEND"] = backend
    reset_database(application, backend)
    yield application
    from cfm.extensions import db

    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """HTTP test client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """CLI runner bound to the app."""
    return app.test_cli_runner()


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    """An app context for service-level tests."""
    with app.app_context():
        yield app


@pytest.fixture
def programme(ctx: Flask) -> Any:
    """One default programme with a number."""
    from cfm.services.admin import create_programme

    return create_programme("kenya", "Kenya resettlement", ["+254700000001"], language="sw", is_default=True)


@pytest.fixture
def redis_app(app: Flask) -> Iterator[Flask]:
    """The app with jobs on a queue of its own on the real Redis, retried without waiting."""
    from redis import Redis
    from rq import Queue

    name = f"cfm-test-{uuid.uuid4().hex[:8]}"
    app.config.update(REDIS_URL=REDIS_URL, JOB_QUEUE=name, JOB_RETRY_INTERVALS=[0, 0, 0])
    connection = Redis.from_url(REDIS_URL)
    connection.ping()
    yield app
    Queue(name, connection=connection).delete(delete_jobs=True)
    connection.close()


def run_worker(app: Flask) -> None:
    """Drain the app's queue in this process, the way `cfm worker --burst` does."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    connection = Redis.from_url(REDIS_URL)
    SimpleWorker([Queue(app.config["JOB_QUEUE"], connection=connection)], connection=connection).work(burst=True)
    connection.close()
