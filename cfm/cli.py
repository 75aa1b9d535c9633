"""The `cfm` command: Flask's CLI for this app plus CFM's own commands (thin wrappers over services)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from cfm.models import ROLES

# Commands that serve nothing and seal nothing: they work right after `pip install`, without keys (DESIGN.md).
KEYLESS_COMMANDS = ("classify", "train", "evaluate")


def _create_app() -> Flask:
    """App factory for the CLI; keys are required except for the classifier's commands."""
    from flask.cli import NoAppException

    from cfm import create_app
    from cfm.services.crypto import ConfigError

    context = click.get_current_context(silent=True)
    info = context.find_object(ScriptInfo) if context is not None else None
    keyless = bool(info is not None and info.data.get("keyless"))
    try:
        return create_app({"KEYS_REQUIRED": False} if keyless else None)
    except ConfigError as exc:  # missing keys: Flask prints the message without a traceback (issue 8)
        raise NoAppException(str(exc)) from exc


class _Group(FlaskGroup):
    """Flask's group, told before the app is built whether the command needs keys."""

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """Mark the classifier's commands keyless, then resolve as Flask does."""
        if name in KEYLESS_COMMANDS:
            ctx.ensure_object(ScriptInfo).data["keyless"] = True
        return super().get_command(ctx, name)


@click.group(cls=_Group, create_app=_create_app, add_version_option=False)
def main() -> None:
    """CFM: complaints and feedback mechanism."""


def register(app: Flask) -> None:
    """Attach CFM's commands to the app's CLI."""
    for command in (init_db, programmes, users, demo, classify, train, evaluate, worker):
        app.cli.add_command(command)
    for command in (import_transcripts, tokens, resend_replies, surveys, audit):
        app.cli.add_command(command)
    app.cli.add_command(remind)
    app.cli.add_command(purge)
    app.cli.add_command(rotate_keys)


@click.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Check the hash chain of the audit log; exit 1 naming the first event that does not match."""
    from sqlalchemy import func, select

    from cfm.extensions import db
    from cfm.models import AuditEvent
    from cfm.services.audit import verify_chain

    broken = verify_chain()
    if broken is not None:
        raise click.ClickException(
            f"Audit chain broken at event {broken}: it, or the event just before it, was altered or removed."
        )
    count = db.session.scalar(select(func.count()).select_from(AuditEvent))
    click.echo(f"Audit chain intact ({count} events).")


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the schema on the configured database."""
    from cfm.services.admin import upgrade_schema

    upgrade_schema()
    click.echo("Database schema is up to date.")


@click.group()
def programmes() -> None:
    """Manage programmes."""


@programmes.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Display name.")
@click.option("--number", "numbers", multiple=True, help="E.164 number (repeatable).")
@click.option("--language", default="en", show_default=True, help="Default language code.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone.")
@click.option("--default", "is_default", is_flag=True, help="Receives /feedback without a programme.")
@with_appcontext
def programmes_create(
    slug: str, name: str, numbers: tuple[str, ...], language: str, timezone: str, is_default: bool
) -> None:
    """Create a programme with its phone numbers."""
    from cfm.services.admin import AdminError, create_programme

    try:
        programme = create_programme(slug, name, numbers, language=language, timezone=timezone, is_default=is_default)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Programme {programme.slug} created.")


@programmes.command("list")
@with_appcontext
def programmes_list() -> None:
    """List programmes and their numbers."""
    from cfm.services.admin import list_programmes

    for programme in list_programmes():
        numbers = " ".join(n.number for n in programme.numbers)
        click.echo(f"{programme.slug}\t{programme.name}\t{programme.default_language}\t{numbers}")


@click.group()
def users() -> None:
    """Manage console users."""


@users.command("create")
@click.argument("email")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES), help="Role (repeatable).")
@click.option("--programme", "programme_slugs", multiple=True, help="Programme slug (repeatable; none = all).")
@with_appcontext
def users_create(email: str, roles: tuple[str, ...], programme_slugs: tuple[str, ...]) -> None:
    """Create a user; the password comes from a hidden, confirmed prompt or from standard input."""
    from cfm.services.admin import AdminError, create_user

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = create_user(email, password, roles, programme_slugs)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"User {user.email} created with roles {', '.join(user.roles)}.")


@click.group()
def surveys() -> None:
    """Publish the shipped surveys (cfm/surveys/*.yaml) for a programme."""


def _programme_or_fail(slug: str) -> Any:
    """The programme with this slug, or a ClickException."""
    from sqlalchemy import select

    from cfm.extensions import db
    from cfm.models import Programme

    programme = db.session.scalars(select(Programme).where(Programme.slug == slug)).first()
    if programme is None:
        raise click.ClickException(f"Unknown programme: {slug}.")
    return programme


@surveys.command("list")
@click.option("--programme", "programme_slug", default=None, help="Show what this programme publishes.")
@with_appcontext
def surveys_list(programme_slug: str | None) -> None:
    """List the shipped survey definitions, or a programme's published surveys."""
    from cfm.services.surveys import library, published_surveys

    if programme_slug:
        for survey in published_surveys(_programme_or_fail(programme_slug)):
            click.echo(f"{survey.slug}\tversion {survey.version}\t/p/{programme_slug}/survey/{survey.slug}")
        return
    for slug in sorted(library()):
        click.echo(slug)


@surveys.command("publish")
@click.argument("slug")
@click.option("--programme", "programme_slug", required=True, help="Programme slug.")
@with_appcontext
def surveys_publish(slug: str, programme_slug: str) -> None:
    """Publish (or refresh) a shipped survey on a programme's pages."""
    from cfm.services.surveys import DefinitionError, publish_survey

    try:
        survey = publish_survey(_programme_or_fail(programme_slug), slug)
    except DefinitionError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Survey {survey.slug} published at /p/{programme_slug}/survey/{survey.slug}.")


@surveys.command("unpublish")
@click.argument("slug")
@click.option("--programme", "programme_slug", required=True, help="Programme slug.")
@with_appcontext
def surveys_unpublish(slug: str, programme_slug: str) -> None:
    """Take a survey off a programme's pages (its responses stay)."""
    from cfm.services.surveys import unpublish_survey

    unpublish_survey(_programme_or_fail(programme_slug), slug)
    click.echo(f"Survey {slug} unpublished.")


@click.command("demo")
@click.option("--port", default=5000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-serve", is_flag=True, help="Build the demo database and exit.")
@click.option("--directory", type=click.Path(file_okay=False), default=None, help="Where to put the demo data.")
def demo(port: int, no_serve: bool, directory: str | None) -> None:
    """Fresh demo database, demo users printed once, sample cases; serves on 127.0.0.1."""
    from cfm.demo import build_demo

    app, accounts, summary = build_demo(directory)
    click.echo(f"Demo database: {app.config['SQLALCHEMY_DATABASE_URI']}")
    click.echo(summary)
    click.echo("Demo users (passwords shown once):")
    for email, role, password in accounts:
        click.echo(f"  {role:<12} {email:<28} {password}")
    if no_serve:
        return
    click.echo(f"Serving on http://127.0.0.1:{port}/  (Ctrl+C to stop)")
    from werkzeug.serving import run_simple

    run_simple("127.0.0.1", port, app, threaded=True)


@click.command("classify")
@click.argument("file", type=click.File("r", encoding="utf-8", errors="surrogateescape"), default="-")
@click.option("--batch-size", default=2000, show_default=True)
@with_appcontext
def classify(file: IO[str], batch_size: int) -> None:
    """Classify JSON lines (with "text") or plain text lines; one JSON object per input line."""
    from cfm.services.classification import get_model

    model = get_model()
    if model is None:
        raise click.ClickException("No usable model: run `cfm train` (the log says why the model did not load).")
    out = sys.stdout
    for batch in _batches(_read_lines(file), batch_size):
        texts = [item["text"] for _, item, error in batch if error is None]
        predictions = iter(model.predict(texts))
        for number, item, error in batch:
            if error is not None:
                click.echo(f"line {number}: {error}", err=True)
                out.write(json.dumps({"line": number, "error": error}) + "\n")
                continue
            prediction = next(predictions)
            result = {key: value for key, value in item.items() if key != "text"}
            result.update(
                category=prediction.category,
                confidence=round(prediction.confidence, 4),
                sensitive=prediction.restricted,
                queue="restricted" if prediction.restricted else "general",
                language=prediction.language,
            )
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
    out.flush()


def _read_lines(file: IO[str]) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """(line number, item, error): JSON objects with "text", or plain text lines; blank lines skipped."""
    for number, raw in enumerate(file, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        line = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if line.lstrip().startswith("{"):
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                yield number, {}, "invalid JSON"
                continue
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                yield number, {}, 'JSON object without a "text" string'
                continue
            yield number, item, None
        else:
            yield number, {"text": line}, None


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Chunks of at most `size` items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@click.command("train")
@click.option("--include-corrections", is_flag=True, help="Add officers' category corrections from the database.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Artifact path (default: MODEL_PATH, else model.skops in the instance folder, which the app then uses).",
)
@with_appcontext
def train(include_corrections: bool, output: str | None) -> None:
    """Train the classifier on the corpus (and corrections) and save the artifact atomically."""
    from pathlib import Path

    from cfm.services.classification import trained_model_path
    from cfm.services.corrections import corrections
    from classifier.train import NoTrainingDataError
    from classifier.train import train as run_training

    extra = list(corrections()) if include_corrections else []
    target = Path(output or current_app.config.get("MODEL_PATH") or trained_model_path())
    try:
        model = run_training(extra=extra, output=target)
    except NoTrainingDataError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Model {model.version} saved to {target} ({len(extra)} corrections included).")


@click.command("evaluate")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None, help="Where to write the report.")
@with_appcontext
def evaluate(output_dir: str | None) -> None:
    """Evaluate on the held-out split; write the report and the model card; print the floors."""
    from pathlib import Path

    from classifier.evaluate import evaluate as run_evaluation

    report = run_evaluation(output_dir=Path(output_dir) if output_dir else None)
    failed = 0
    for name, value, floor, holds in report.floors():
        failed += not holds
        click.echo(f"{name:<48} {value:8.3f}  floor {floor:<8} {'holds' if holds else 'FAILS'}")
    if failed:
        raise click.ClickException(f"{failed} floor(s) not met")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@with_appcontext
def worker(burst: bool) -> None:
    """Run an RQ worker for classification, outbound messages and reminders (needs REDIS_URL)."""
    from rq import SimpleWorker

    from cfm import jobs

    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException("Set CFM_REDIS_URL to run a worker; without it jobs run inline.")
    jobs.schedule_reminders()  # issue 6: every REMIND_EVERY_MINUTES, run by the worker's scheduler
    # Issue 9: jobs run in this process, which keeps the model and the compiled safety net loaded and its database
    # connections pooled; RQ's forking Worker loaded both again in every job (seconds per job).
    # Start more workers for more throughput; each job has its own app context (cfm.jobs.app_context).
    jobs.warm_up()
    SimpleWorker([jobs.queue()], connection=jobs.redis_connection()).work(burst=burst, with_scheduler=True)


@click.command("import-transcripts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--programme", default=None, help="Programme slug for rows that name none.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "json"]), default=None, help="Default: by name.")
@click.option("--dry-run", is_flag=True, help="Report what would be created; store nothing.")
@with_appcontext
def import_transcripts(file: str, programme: str | None, fmt: str | None, dry_run: bool) -> None:
    """Import hotline call transcripts (CSV or JSON lines): one line per row, then the totals."""
    from pathlib import Path

    from cfm.services.imports import import_transcripts as run_import
    from channels.base import ChannelError

    path = Path(file)
    try:
        report = run_import(path.read_bytes(), filename=path.name, fmt=fmt, programme=programme, dry_run=dry_run)
    except ChannelError as exc:
        raise click.ClickException(f"{exc.message} Nothing was imported.") from exc
    for result in report.rows:
        transcript = f" (transcript {result.transcript_id})" if result.transcript_id else ""
        if result.outcome == "created":
            click.echo(f"row {result.row}: created {result.reference}{transcript}")
        elif result.outcome == "would_create":
            click.echo(f"row {result.row}: would be created{transcript}")
        elif result.outcome == "duplicate":
            of = f" of {result.reference}" if result.reference else ""
            click.echo(f"row {result.row}: duplicate{of}{transcript}: {result.reason}")
        else:
            click.echo(f"row {result.row}: {result.outcome}{transcript}: {result.reason}")
    if report.ignored_columns:
        click.echo(f"Ignored columns: {', '.join(report.ignored_columns)}")
    counts = report.counts()
    created = counts["would_create"] if dry_run else counts["created"]
    summary = (
        f"{created} {'would be created' if dry_run else 'created'}, {counts['duplicate']} duplicate, "
        f"{counts['rejected']} rejected"
    )
    if counts["failed"]:
        summary += f", {counts['failed']} failed (database unavailable; import the file again)"
    click.echo(summary + (" (dry run: nothing was stored)." if dry_run else "."))
    if not report.ok:
        raise SystemExit(1)


@click.group()
def tokens() -> None:
    """Manage API tokens for partner systems."""


@tokens.command("create")
@click.option("--programme", required=True, help="Programme slug the token may submit to and read.")
@click.option("--name", required=True, help="Who uses it (e.g. kobo-arrival-survey).")
@click.option(
    "--kobo-field",
    "kobo_fields",
    multiple=True,
    metavar="KEY=FIELD[,FIELD]",
    help="Kobo form field(s) for text, language, consent, phone, name or email (repeatable).",
)
@with_appcontext
def tokens_create(programme: str, name: str, kobo_fields: tuple[str, ...]) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from cfm.api.tokens import TokenError, create_token

    field_map: dict[str, list[str]] = {}
    for item in kobo_fields:
        key, sep, fields = item.partition("=")
        names = [name.strip() for name in fields.split(",") if name.strip()]
        if not sep or not names:
            raise click.BadParameter(f"{item!r} is not KEY=FIELD.", param_hint="--kobo-field")
        field_map.setdefault(key.strip(), []).extend(names)
    try:
        row, token = create_token(programme, name, field_map or None)
    except TokenError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Token {row.id} for programme {programme} ({row.name}). It is shown only this once:")
    click.echo(token)


@tokens.command("list")
@with_appcontext
def tokens_list() -> None:
    """List tokens (id, programme, name, prefix, state); never the tokens themselves."""
    from cfm.api.tokens import list_tokens

    for row in list_tokens():
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        used = f"last used {row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never used"
        click.echo(f"{row.id}\t{row.programme.slug}\t{row.name}\t{row.token_prefix}...\t{state}\t{used}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    from cfm.api.tokens import TokenError, revoke_token

    try:
        revoke_token(token_id)
    except TokenError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Token {token_id} revoked.")


@click.command("resend-replies")
@click.option("--older-than", default=15, show_default=True, help="Minutes a reply must have waited.")
@with_appcontext
def resend_replies(older_than: int) -> None:
    """Hand replies still pending (a worker or the queue was down) to the job queue again."""
    from cfm.services.outbound import resend_pending

    click.echo(f"{resend_pending(older_than_minutes=older_than)} reply(ies) queued again.")


@click.command("remind")
@with_appcontext
def remind() -> None:
    """Flag overdue cases and notify supervisors (general) and focal points (restricted); safe to run from cron."""
    from cfm.services.reminders import run

    result = run()
    click.echo(
        f"{result.overdue} overdue case(s) due a reminder, {result.reminded} reminded, {result.unrouted} without "
        f"anyone to remind; {result.notices} notice(s) for {result.recipients} person(s), {result.emails} email(s)"
        + (f", {result.email_failures} email(s) failed." if result.email_failures else ".")
    )


# --- issue 8: keys, rotation, retention -------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Key material (works without a configured app)."""


@keys.command("generate")
@click.option("--encryption-key-only", is_flag=True, help="Print one new Fernet key (to put first in ENCRYPTION_KEYS).")
def keys_generate(encryption_key_only: bool) -> None:
    """Print fresh CFM_SECRET_KEY, CFM_ENCRYPTION_KEYS and CFM_LOOKUP_KEY lines for the environment."""
    from cfm.services.keys import environment_lines

    for line in environment_lines(encryption_key_only):
        click.echo(line)


@click.command("rotate-keys")
@click.option("--dry-run", is_flag=True, help="Count the values to re-encrypt; change nothing.")
@click.option("--batch-size", default=500, show_default=True, help="Rows per transaction.")
@click.option("--rehash-phones", is_flag=True, help="Also recompute phone lookup hashes with the current LOOKUP_KEY.")
@with_appcontext
def rotate_keys(dry_run: bool, batch_size: int, rehash_phones: bool) -> None:
    """Re-encrypt every sealed column with the newest ENCRYPTION_KEYS key; safe to interrupt and run again."""
    from cfm.services.keys import rotate_keys as run_rotation

    def progress(table: str, seen: int, rotated: int) -> None:
        click.echo(f"{table}: {seen} values checked, {rotated} {'to re-encrypt' if dry_run else 're-encrypted'}")

    report = run_rotation(
        current_app.config, dry_run=dry_run, batch_size=batch_size, rehash_phones=rehash_phones, progress=progress
    )
    verb = "would be re-encrypted" if dry_run else "re-encrypted"
    click.echo(f"{report.total('seen')} sealed values checked, {report.total('rotated')} {verb}.")
    if rehash_phones:
        click.echo(f"{report.rehashed} phone hash(es) {'to recompute' if dry_run else 'recomputed'}.")
        if report.hash_only:
            click.echo(f"{report.hash_only} opt-out(s) hold only the old hash and cannot be carried over.")
    if report.total("unreadable"):
        raise click.ClickException(
            f"{report.total('unreadable')} value(s) open with none of the configured keys: keep the old key in "
            "CFM_ENCRYPTION_KEYS until they are re-encrypted."
        )


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@click.option("--batch-size", default=500, show_default=True, help="Cases per transaction.")
@with_appcontext
def purge(dry_run: bool, batch_size: int) -> None:
    """Strip personal data from cases closed more than RETENTION_DAYS ago (per-programme override); audited."""
    from cfm.services.retention import purge as run_purge

    report = run_purge(dry_run=dry_run, batch_size=batch_size)
    counts = ", ".join(f"{value} {name}" for name, value in report.counts().items())
    click.echo(f"{'Would purge' if dry_run else 'Purged'}: {counts}.")


# Commands that must work before any key is configured: they are looked up on the group, not on the app.
main.add_command(keys)
main.add_command(demo)
