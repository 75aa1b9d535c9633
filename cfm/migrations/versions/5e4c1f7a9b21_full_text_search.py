"""full-text search: PostgreSQL GIN indexes, SQLite FTS5 tables and triggers (issue 6)

The same objects as cfm/models/case.py declares (Index ... postgresql_using="gin", and the FTS5 DDL run after
create_all on SQLite), written out in raw SQL so that this migration never imports the app. Only text_plain (the
text of general cases) is indexed; sealed text never is.

Revision ID: 5e4c1f7a9b21
Revises: 529594c1e3d0
Create Date: 2026-11-22 15:50:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "5e4c1f7a9b21"
down_revision = "529594c1e3d0"
branch_labels = None
depends_on = None

TABLES = (("case", "case_fts"), ("message", "message_fts"))


def _sqlite_statements(table, fts, tokenizer):
    """The FTS5 external-content table, its sync triggers and the backfill of the clear text already stored."""
    delete = f"INSERT INTO {fts}({fts}, rowid, text_plain) SELECT 'delete', old.id, old.text_plain"
    insert = f"INSERT INTO {fts}(rowid, text_plain) SELECT new.id, new.text_plain"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(text_plain, content='{table}', content_rowid='id', "
        f"tokenize='{tokenizer}')",
        f'CREATE TRIGGER {fts}_ai AFTER INSERT ON "{table}" BEGIN {insert} WHERE new.text_plain IS NOT NULL; END',
        f'CREATE TRIGGER {fts}_ad AFTER DELETE ON "{table}" BEGIN {delete} WHERE old.text_plain IS NOT NULL; END',
        f'CREATE TRIGGER {fts}_au AFTER UPDATE OF id, text_plain ON "{table}" BEGIN '
        f"{delete} WHERE old.text_plain IS NOT NULL; {insert} WHERE new.text_plain IS NOT NULL; END",
        f'INSERT INTO {fts}(rowid, text_plain) SELECT id, text_plain FROM "{table}" WHERE text_plain IS NOT NULL',  # nosec B608: TABLES constants
    ]


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, _fts in TABLES:
            op.execute(
                f'CREATE INDEX ix_{table}_text_plain_fts ON "{table}" '
                "USING gin (to_tsvector('simple'::regconfig, COALESCE(text_plain, ''::text)))"
            )
    elif bind.dialect.name == "sqlite":
        version = tuple(int(p) for p in bind.execute(sa.text("SELECT sqlite_version()")).scalar().split(".")[:2])
        tokenizer = "trigram" if version >= (3, 34) else "unicode61 remove_diacritics 2"
        for table, fts in TABLES:
            for statement in _sqlite_statements(table, fts, tokenizer):
                op.execute(statement)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, _fts in TABLES:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_text_plain_fts")
    elif bind.dialect.name == "sqlite":
        for _table, fts in TABLES:
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
