"""The console's notice list (overdue reminders, issue 6), its unread count in the nav, and the reminder email.

The email's words live here, with the other officer-facing strings (translated in the console locales); the
service cfm.services.reminders decides who hears about what.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _

from cfm.console import bp
from cfm.models import User
from cfm.services import reminders


@bp.context_processor
def _notice_context() -> dict[str, Any]:
    """Unread notices for the nav link; None for roles that never receive any (no link at all)."""
    user = g.get("user")
    if user is None or not reminders.may_receive(user):
        return {"notice_unread": None}
    return {"notice_unread": reminders.unread_count(user)}


@bp.route("/notices")
def notices() -> ResponseReturnValue:
    """The signed-in user's notices, newest first (only about cases the user may still open)."""
    user = g.user
    return render_template(
        "console/notices.html",
        items=reminders.notices_for(user),
        unread=reminders.unread_count(user),
        notices_page=True,
    )


@bp.route("/notices/read", methods=["POST"])
def mark_read() -> ResponseReturnValue:
    """Mark one notice (form field `notice`) or all of the user's notices as read."""
    ident = request.form.get("notice", "")
    reminders.mark_read(g.user, int(ident) if ident.isdigit() else None)
    return redirect(url_for("console.notices"))


def _link(endpoint: str, **values: str) -> str:
    """A console link, absolute when PUBLIC_BASE_URL is set (built without a request: `cfm remind`, the worker)."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return base + current_app.url_map.bind("localhost").build(endpoint, values)


def overdue_email(user: User, summary: reminders.Summary) -> tuple[str, str]:
    """Subject and body of one recipient's reminder: counts and links only, never case text or personal data."""
    with force_locale(user.locale or current_app.config.get("DEFAULT_LOCALE", "en")):
        total = summary.total
        subject = ngettext("CFM: %(num)d case is overdue", "CFM: %(num)d cases are overdue", total)
        lines = [_("Hello,"), "", _("These cases are past their due date and still open:"), ""]
        for programme, count in summary.general:
            lines.append(
                ngettext(
                    "%(programme)s: %(num)d case overdue in the general queue",
                    "%(programme)s: %(num)d cases overdue in the general queue",
                    count,
                    programme=programme,
                )
            )
        if summary.general:
            lines.append(_link("console.queue", tab="general", overdue="1"))
            lines.append("")
        if summary.restricted:
            lines.append(
                ngettext("%(num)d restricted case overdue", "%(num)d restricted cases overdue", summary.restricted)
            )
            lines.append(_link("console.queue", tab="restricted", overdue="1"))
            lines.append("")
        lines.append(_("Your notices in the console: %(link)s", link=_link("console.notices")))
        lines += ["", _("This message was sent by CFM. Please do not reply to it.")]
        return subject, "\n".join(lines) + "\n"
