"""Forms of the hotline pages (issue 5): a call transcript, and a file of transcripts to import.

Field names match channels/hotline.py's CALL_FIELDS: the channel validates the values (one set of rules for
every hotline path); these forms render the fields and check the CSRF token.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, SelectField, StringField, TelField, TextAreaField

from channels.base import MAX_TEXT_LENGTH


class CallForm(FlaskForm):
    """One call, typed while the caller is on the line: the transcript first, the rest has defaults."""

    text = TextAreaField(
        _l("What the caller says"),
        description=_l("Write it in the caller's words and language."),
        render_kw={"autofocus": True, "rows": 9, "maxlength": MAX_TEXT_LENGTH, "dir": "auto", "spellcheck": "false"},
    )
    programme = SelectField(_l("Programme"), choices=[], validate_choice=False)
    language = SelectField(_l("Caller's language"), choices=[], validate_choice=False)
    serious = BooleanField(
        _l("The caller reports something serious"),
        description=_l("Abuse, exploitation, fraud, threats or danger: the case goes straight to the focal points."),
    )
    consent = BooleanField(
        _l("The caller agrees to be contacted"),
        description=_l("Ask first. Without consent the name and number are not kept."),
    )
    caller_phone = TelField(
        _l("Number to call back"),
        description=_l("International format, for example +254 700 000 000."),
        render_kw={"autocomplete": "off", "inputmode": "tel", "dir": "ltr"},
    )
    caller_name = StringField(_l("Caller's name (optional)"), render_kw={"autocomplete": "off", "maxlength": 200})
    # The idempotency token of this form: sending it twice (double Enter, reload) records one call.
    submission = HiddenField()


class ImportForm(FlaskForm):
    """A transcript file (CSV or JSON lines), the programme for rows that name none, and the dry-run switch."""

    file = FileField(
        _l("Transcript file"),
        render_kw={"accept": ".csv,.txt,.tsv,.jsonl,.ndjson,.json,text/csv,application/json"},
    )
    programme = SelectField(_l("Programme for rows that name none"), choices=[], validate_choice=False)
    dry_run = BooleanField(
        _l("Dry run: check the file and report, store nothing"),
        default=True,
    )
