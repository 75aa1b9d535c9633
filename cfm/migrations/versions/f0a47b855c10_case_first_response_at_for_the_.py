"""case first_response_at for the dashboard median

The dashboard's median time to first response joined every case of the range to its outbound messages and status
changes (issue 9: half of the dashboard's database time at a million cases). The case now keeps its earliest
response (cfm.services.dashboard.record_response), backfilled here from the same two sources, and the dashboard's
covering index carries it, so that the median reads index entries only.

On PostgreSQL the backfill rewrites the rows of every answered case; the upgrade ends with VACUUM ANALYZE "case"
(outside the transaction), so that the dashboard's index-only scans do not visit the table until autovacuum runs.

Revision ID: f0a47b855c10
Revises: 8858ac667731
Create Date: 2026-11-22 21:09:16.262740

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f0a47b855c10'
down_revision = '8858ac667731'
branch_labels = None
depends_on = None

# A response: an outbound reply to the person, or a status change away from "new" (cfm/services/dashboard.py).
RESPONSES = (
    "SELECT case_id, created_at AS at FROM message WHERE direction = 'outbound' "
    "UNION ALL "
    "SELECT case_id, created_at AS at FROM case_event WHERE kind = 'status' AND old_value = 'new'"
)


def upgrade():
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index(batch_op.f('ix_case_queue_programme_received_counts'))

    # Backfilled before the index is built again: the index is written once, not row by row.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            'UPDATE "case" SET first_response_at = firsts.at '  # nosec B608: RESPONSES is a constant
            f"FROM (SELECT case_id, min(at) AS at FROM ({RESPONSES}) AS responses GROUP BY case_id) AS firsts "
            'WHERE firsts.case_id = "case".id'
        )
    else:
        # SQLite stores UTC timestamps as ISO text of one width: min() of the text is the earliest time.
        op.execute(
            'UPDATE "case" SET first_response_at = '  # nosec B608: RESPONSES is a constant
            f'(SELECT min(at) FROM ({RESPONSES}) AS responses WHERE responses.case_id = "case".id) '
            f'WHERE id IN (SELECT case_id FROM ({RESPONSES}) AS responses)'
        )

    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.create_index('ix_case_queue_programme_received_counts', ['queue', 'programme_id', 'received_at', 'category', 'channel', 'language', 'status', 'closed_at', 'first_response_at', 'id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute('VACUUM ANALYZE "case"')


def downgrade():
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_queue_programme_received_counts')
        batch_op.create_index(batch_op.f('ix_case_queue_programme_received_counts'), ['queue', 'programme_id', 'received_at', 'category', 'channel', 'language', 'status', 'closed_at', 'id'], unique=False)
        batch_op.drop_column('first_response_at')
