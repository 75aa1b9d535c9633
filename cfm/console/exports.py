"""Export routes: the queue's filtered list as CSV or XLSX (thin views over cfm.services.exports, issue 6).

GET with the queue page's query string works for links and scripts; the page's Export menu POSTs the same fields
(with its CSRF token) so that search words never land in a URL, a server log or the browser history.
"""

from __future__ import annotations

from typing import cast

from flask import Response, abort, g, request, send_file, stream_with_context
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from cfm.console import bp, labels
from cfm.console.queues import TABS, Filters, filtered
from cfm.models import User
from cfm.services import exports

TRUE = ("1", "on", "true", "yes")

# Column headers, in the officer's console language.
HEADERS = {
    "reference": _l("Reference"),
    "received": _l("Received"),
    "programme": _l("Programme"),
    "channel": _l("Channel"),
    "language": _l("Language"),
    "category": _l("Category"),
    "ifrc_type": _l("Feedback type (IFRC)"),
    "ifrc_category": _l("Category (IFRC)"),
    "queue": _l("Queue"),
    "status": _l("Status"),
    "priority": _l("Priority"),
    "due": _l("Due"),
    "assignee": _l("Assignee"),
    "closure_method": _l("How the loop was closed"),
    "text": _l("Feedback"),
    "contact_name": _l("Name"),
    "contact_phone": _l("Phone"),
    "contact_email": _l("Email"),
}


def _vocabulary() -> exports.Vocabulary:
    """Headers and labels translated once per export (not once per row)."""
    tables = {
        "channel": labels.CHANNEL_LABELS,
        "category": labels.CATEGORY_LABELS,
        "queue": labels.QUEUE_LABELS,
        "status": labels.STATUS_LABELS,
        "priority": labels.PRIORITY_LABELS,
        "closure_method": labels.CLOSURE_LABELS,
    }
    return exports.Vocabulary(
        headers={key: str(text) for key, text in HEADERS.items()},
        values={kind: {code: str(text) for code, text in table.items()} for kind, table in tables.items()},
    )


@bp.route("/queue/<tab>/export.<fmt>", methods=["GET", "POST"])
def export(tab: str, fmt: str) -> ResponseReturnValue:
    """The queue's filtered list as a file; 404 for a queue the user's roles do not open (report viewers, admins)."""
    user = cast(User, current_user._get_current_object())
    if tab not in TABS or fmt not in exports.FORMATS or not exports.may_export(user, tab):
        abort(404)
    args = request.form if request.method == "POST" else request.args
    filters = Filters.from_args(args)
    options = exports.ExportOptions(fmt=fmt, ifrc=args.get("ifrc", "") in TRUE, contact=args.get("contact", "") in TRUE)
    localeinfo = g.get("localeinfo")
    result = exports.export_cases(
        user,
        tab,
        filtered(user, tab, filters),
        filters.args(),
        options,
        _vocabulary(),
        rtl=bool(localeinfo and localeinfo.rtl),
    )
    if result.stream is not None:
        response = Response(stream_with_context(result.stream), mimetype=result.mimetype)
        response.headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
        return response
    assert result.file is not None
    return send_file(result.file, mimetype=result.mimetype, as_attachment=True, download_name=result.filename)
