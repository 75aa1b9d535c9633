"""Console routes: thin views over cfm.services.{auth,triage,access}; every list is built on visible_cases()."""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any, cast

from flask import (
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from werkzeug.exceptions import HTTPException

from cfm.console import bp, labels, status
from cfm.console.forms import (
    AssignForm,
    CategoryForm,
    LoginForm,
    NoteForm,
    PasswordChangeForm,
    ReferralForm,
    ReplyForm,
    StatusForm,
    TotpForm,
)
from cfm.console.queues import (
    TABS,
    Filters,
    filter_choices,
    page_rows,
    queue_page,
    readable_tabs,
    tab_counts,
)
from cfm.extensions import db, limiter
from cfm.extensions import login as login_manager
from cfm.models import Case, User
from cfm.models.case import PRIORITIES, QUEUE_GENERAL, STATUSES
from cfm.models.types import utcnow
from cfm.services import auth, outbound, reply_templates, triage
from cfm.services.access import can_see_restricted, get_visible_case
from channels.base import CHANNELS
from classifier.categories import GENERAL_CATEGORIES, RESTRICTED_CATEGORIES

log = logging.getLogger(__name__)

DEFAULT_LIMITS = {
    # A whole office may share one address: generous per address, strict per account (failures only).
    "CONSOLE_LOGIN_LIMIT_PER_ADDRESS": "30 per 10 minutes",
    "CONSOLE_LOGIN_LIMIT_PER_ACCOUNT": "5 per 15 minutes",
    "CONSOLE_TOTP_LIMIT": "5 per 5 minutes",
}
PUBLIC_ENDPOINTS = ("console.login", "console.second_factor", "console.enrol", "console.static")
PENDING_SECONDS = 300  # between the password and the second factor


def _limit(key: str) -> Any:
    """A rate-limit string read from the config at request time."""
    return lambda: str(current_app.config.get(key, DEFAULT_LIMITS[key]))


def _account_key() -> str:
    """Per-account limiter key from the typed email (hashed)."""
    return auth.account_key(request.form.get("email", ""))


def _pending_key() -> str:
    """Per-account limiter key during the second factor."""
    return f"totp:{session.get('pending_uid', request.remote_addr)}"


def _failed(response: Any) -> bool:
    """Only failed attempts count against an account (a success redirects)."""
    return bool(response.status_code != 302)


@bp.record_once
def _configure(state: Any) -> None:
    """Cookie and sign-in settings the console needs (cfm/__init__.py only registers the blueprint)."""
    app: Flask = state.app
    app.config.setdefault("CONSOLE_IDLE_MINUTES", 30)
    # Secure cookies everywhere but in tests (browsers accept them from http://localhost and 127.0.0.1 too);
    # CONSOLE_COOKIE_SECURE=false is the escape hatch for a plain-HTTP test host.
    secure = app.config.get("CONSOLE_COOKIE_SECURE")
    if isinstance(secure, str):
        secure = secure.strip().lower() in ("1", "true", "yes", "on")
    app.config["SESSION_COOKIE_SECURE"] = (not app.config.get("TESTING")) if secure is None else bool(secure)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    login_manager.login_view = "console.login"
    login_manager.login_message = cast(str, _l("Please sign in to continue."))
    login_manager.login_message_category = "info"


# --- request guards -------------------------------------------------------------------------------------------


def _user() -> User:
    """The signed-in user (the guard below guarantees one)."""
    return cast(User, current_user._get_current_object())


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    """Sign-in required, second factor enforced, idle sessions ended."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("console.login", next=_safe_next(request.full_path)))
    user = _user()
    now = int(time.time())
    idle = int(current_app.config.get("CONSOLE_IDLE_MINUTES", 30)) * 60
    seen = session.get("seen")
    record = auth.live_session(session.get("sid"), user.id)
    # Idle timeout, checked on the server-side session (issue 8, V3.3.2) as well as in the cookie.
    if record is None or not isinstance(seen, int) or now - seen > idle or auth.session_idle(record):
        auth.logged_out(user, idle=True)
        _end_session()
        flash(_("You were signed out after a period of inactivity."), "info")
        return redirect(url_for("console.login"))
    if auth.needs_second_factor(user) and not session.get("mfa"):
        _end_session()
        flash(_("Your account needs a second factor. Please sign in again."), "info")
        return redirect(url_for("console.login"))
    session["seen"] = now
    g.user = user
    return None


@bp.after_request
def _headers(response: Any) -> Any:
    """Case data is never cached, framed or sent on as a referrer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    return response


@bp.errorhandler(429)
def _too_many(error: HTTPException) -> ResponseReturnValue:
    """Throttled sign-in: the sign-in page with a plain message, same for every account."""
    if request.endpoint in ("console.login", "console.second_factor", "console.enrol"):
        form = LoginForm()
        message = _("Too many sign-in attempts. Please wait a few minutes and try again.")
        return render_template("console/login.html", form=form, error=message), 429
    return render_template("console/error.html", code=429, message=_("Too many requests.")), 429


@bp.errorhandler(404)
def _not_found(error: HTTPException) -> ResponseReturnValue:
    """The console's own 404 (the same for a missing case and one the user may not see)."""
    return render_template(
        "console/error.html", code=404, message=_("There is nothing here, or you cannot open it.")
    ), 404


@bp.context_processor
def _context() -> dict[str, Any]:
    """Tabs with counts, labels and the user for the layout."""
    user = g.get("user")
    tabs: dict[str, Any] = {}
    if user is not None:
        try:
            tabs = tab_counts(user)
        except Exception:  # fail closed (issue 8, ASVS V4.1.5): the error page after a failed access check shows none
            log.exception("queue counts unavailable")
    return {
        "me": user,
        "classifier_down": user is not None and not status.classifier_ready(),
        "tabs": tabs,
        "L": labels,
        "label": labels.label,
        "now": utcnow(),
    }


def _safe_next(target: str | None) -> str | None:
    """Only console paths on this site are followed after sign-in."""
    if not target or not target.startswith("/console") or target.startswith("//") or "\\" in target:
        return None
    return target.rstrip("?") or None


def _end_session() -> None:
    """Revoke the server-side session, log out and forget everything in the session cookie."""
    auth.revoke_session(session.get("sid"))
    logout_user()
    session.clear()


# --- sign-in --------------------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_limit("CONSOLE_LOGIN_LIMIT_PER_ADDRESS"), methods=["POST"])
@limiter.limit(_limit("CONSOLE_LOGIN_LIMIT_PER_ACCOUNT"), key_func=_account_key, methods=["POST"], deduct_when=_failed)
def login() -> ResponseReturnValue:
    """Email and password; then the second factor when the account needs one."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("console.index"))
    form = LoginForm()
    if request.method == "POST":
        user = auth.authenticate(request.form.get("email", ""), request.form.get("password", ""))
        if user is None or not form.validate():
            error = _("The email or password is not right.")
            return render_template("console/login.html", form=form, error=error), 401
        next_url = _safe_next(request.args.get("next"))
        auth.revoke_session(session.get("sid"))  # a sign-in over an open session ends that one
        session.clear()  # a fresh session at every sign-in (no fixation)
        if auth.needs_second_factor(user):
            session.update(pending_uid=user.id, pending_at=int(time.time()), next=next_url)
            return redirect(url_for("console.second_factor" if user.totp_secret else "console.enrol"))
        return _sign_in(user, second_factor=False, next_url=next_url)
    return render_template("console/login.html", form=form, error=None)


def _sign_in(user: User, *, second_factor: bool, next_url: str | None) -> ResponseReturnValue:
    """Start the authenticated session."""
    session.clear()
    login_user(user)
    session["sid"] = auth.start_session(user)  # a new server-side session at every sign-in (V3.2.1)
    session["seen"] = int(time.time())
    session["mfa"] = second_factor
    auth.login_succeeded(user, second_factor=second_factor)
    return redirect(next_url or url_for("console.index"))


def _pending_user() -> User | None:
    """The user between password and second factor, if that step has not expired."""
    uid, at = session.get("pending_uid"), session.get("pending_at")
    if not isinstance(uid, int) or not isinstance(at, int) or time.time() - at > PENDING_SECONDS:
        return None
    user = db.session.get(User, uid)
    return user if user is not None and user.active else None


@bp.route("/login/verify", methods=["GET", "POST"])
@limiter.limit(_limit("CONSOLE_TOTP_LIMIT"), key_func=_pending_key, methods=["POST"], deduct_when=_failed)
def second_factor() -> ResponseReturnValue:
    """The TOTP code of an enrolled user."""
    user = _pending_user()
    if user is None or not user.totp_secret:
        session.clear()
        flash(_("Please sign in again."), "info")
        return redirect(url_for("console.login"))
    form = TotpForm()
    if form.validate_on_submit():
        if auth.accept_totp(user, form.code.data or ""):  # right, and not used before (no replay)
            return _sign_in(user, second_factor=True, next_url=session.get("next"))
        auth.second_factor_failed(user)
        return render_template(
            "console/totp.html", form=form, error=_("That code is not right. Try the newest one.")
        ), 401
    return render_template("console/totp.html", form=form, error=None)


@bp.route("/login/enrol", methods=["GET", "POST"])
@limiter.limit(_limit("CONSOLE_TOTP_LIMIT"), key_func=_pending_key, methods=["POST"], deduct_when=_failed)
def enrol() -> ResponseReturnValue:
    """First sign-in of an account that needs a second factor: scan the QR code, confirm one code."""
    user = _pending_user()
    if user is None or user.totp_secret:
        session.clear()
        flash(_("Please sign in again."), "info")
        return redirect(url_for("console.login"))
    secret = session.get("enrol_secret")
    if not isinstance(secret, str):
        secret = auth.new_totp_secret()
        session["enrol_secret"] = secret
    form = TotpForm()
    error = None
    if form.validate_on_submit():
        if auth.enrol_totp(user, secret, form.code.data or ""):
            response = _sign_in(user, second_factor=True, next_url=session.get("next"))
            flash(_("Two-step sign-in is on for your account."), "ok")  # after _sign_in, which clears the session
            return response
        error = _("That code is not right. Check the time on your phone and try the newest code.")
    uri = auth.provisioning_uri(user, secret)
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    status = 401 if error else 200
    return render_template(
        "console/enrol.html", form=form, error=error, qr=auth.qr_svg(uri), secret=grouped, uri=uri
    ), status


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    """Sign out (POST with CSRF, so that a link elsewhere cannot sign anyone out)."""
    auth.logged_out(_user())
    _end_session()
    flash(_("You are signed out."), "ok")
    return redirect(url_for("console.login"))


@bp.route("/account", methods=["GET", "POST"])
def account() -> ResponseReturnValue:
    """The user's account: roles, programmes, password change."""
    user = _user()
    form = PasswordChangeForm()
    error = None
    if form.validate_on_submit():
        try:
            auth.change_password(user, form.current.data or "", form.new.data or "", form.confirm.data or "")
        except auth.AuthError as exc:
            error = str(exc)
        else:
            flash(_("Your password is changed."), "ok")
            return redirect(url_for("console.account"))
    return render_template("console/account.html", form=form, error=error), 400 if error else 200


# --- queues ---------------------------------------------------------------------------------------------------


@bp.route("/")
def index() -> ResponseReturnValue:
    """The first queue this user may read; a plain home page for roles without queues."""
    tabs = readable_tabs(_user())
    if tabs:
        return redirect(url_for("console.queue", tab=tabs[0]))
    if _user().has_role("report_viewer"):
        return redirect(url_for("console.dashboard"))  # report viewers land on the dashboard (issue 6)
    if _user().has_role("admin"):
        return redirect(url_for("console.admin.index"))
    return render_template("console/home.html")


@bp.route("/queue/<tab>")
def queue(tab: str) -> ResponseReturnValue:
    """One queue, filtered, searched and paged by keyset; 404 for a queue the user's roles do not open."""
    user = _user()
    if tab not in TABS or tab not in readable_tabs(user):
        abort(404)
    filters = Filters.from_args(request.args)
    after = request.args.get("after")
    cases, next_cursor = queue_page(user, tab, filters, after)
    choices = filter_choices(user, tab)
    return render_template(
        "console/queue.html",
        tab=tab,
        rows=page_rows(cases, utcnow()),
        filters=filters,
        next_cursor=next_cursor,
        paged=bool(after),
        choices=choices,
        statuses=STATUSES,
        priorities=PRIORITIES,
        channels=CHANNELS,
        categories=GENERAL_CATEGORIES if tab == "general" else RESTRICTED_CATEGORIES + GENERAL_CATEGORIES,
    )


# --- one case -------------------------------------------------------------------------------------------------


def _visible_or_404(reference: str) -> Case:
    """The case if this user may open it; 404 otherwise (never 403: existence is not leaked)."""
    case = get_visible_case(_user(), reference)
    if case is None:
        abort(404)
    return case


@bp.route("/cases/<reference>")
def case_view(reference: str) -> ResponseReturnValue:
    """Text, thread, classification, contact (with consent), history, notes and the actions."""
    user = _user()
    case = _visible_or_404(reference)
    triage.record_view(case, user)
    reporter = case.reporter
    show_contact = bool(reporter and reporter.consent_to_contact and (reporter.phone or reporter.email))
    events = triage.history(case)
    notes = triage.notes(case)
    timeline = sorted(
        [("event", e.created_at, e.id, e) for e in events] + [("note", n.created_at, n.id, n) for n in notes],
        key=lambda item: (item[1], item[0], item[2]),
        reverse=True,
    )
    forms = _action_forms(case, user)
    overdue = bool(case.due_at and case.due_at < utcnow() and case.status != "closed")
    refusal = outbound.refusal_reason(case)
    chosen = request.args.get("template")
    forms["reply"].template.choices, template_text = reply_templates.picker(case, chosen) if not refusal else ([], None)
    if template_text is not None:  # "use template" (issue 6): the textarea starts from the chosen template
        forms["reply"].template.data, forms["reply"].body.data = chosen, template_text
    return render_template(
        "console/case.html",
        case=case,
        tab="general" if case.queue == QUEUE_GENERAL else "restricted",
        reporter=reporter if show_contact else None,
        contact_withheld=bool(reporter and not show_contact),
        timeline=timeline,
        referrals=triage.referrals(case),
        overdue=overdue,
        forms=forms,
        can_refer=not case.queue == QUEUE_GENERAL and can_see_restricted(user),
        can_leave_restricted=can_see_restricted(user),
        restricted_categories=RESTRICTED_CATEGORIES,
        reply_refusal=labels.label(labels.REPLY_REFUSALS, refusal[0]) if refusal else None,
    )


def _action_forms(case: Case, user: User) -> dict[str, Any]:
    """The action forms with their choices for this case and user."""
    assign = AssignForm(prefix="assign")
    people = triage.assignable_users(case) if triage.can_assign_others(user, case) else []
    if people:
        assign.assignee.choices = [("", _("Nobody"))] + [(str(u.id), u.email) for u in people]
        assign.assignee.data = str(case.assignee_id or "")
    status = StatusForm(prefix="status")
    status.status.choices = [(s, labels.label(labels.STATUS_LABELS, s)) for s in triage.next_statuses(case)]
    status.closure_method.choices = [("", _("Choose when closing"))] + [
        (m, labels.label(labels.CLOSURE_LABELS, m)) for m in triage.CLOSURE_METHODS
    ]
    category = CategoryForm(prefix="category")
    allowed = list(GENERAL_CATEGORIES + RESTRICTED_CATEGORIES)
    if case.queue != QUEUE_GENERAL and not can_see_restricted(user):
        allowed = list(RESTRICTED_CATEGORIES)
    category.category.choices = [(c, labels.label(labels.CATEGORY_LABELS, c)) for c in allowed]
    category.category.data = case.category
    referral = ReferralForm(prefix="referral")
    if referral.referred_on.data is None:
        referral.referred_on.data = date.today()
    for form in (assign, status, category, referral):
        form.version.data = str(case.version)  # what the officer sees; triage refuses if it moved on (issue 8)
    return {
        "assign": assign,
        "people": people,
        "status": status,
        "category": category,
        "note": NoteForm(prefix="note"),
        "referral": referral,
        "reply": ReplyForm(prefix="reply"),
    }


def _back(case: Case) -> ResponseReturnValue:
    """Back to the case when the user can still open it, else to the queue it was in."""
    if get_visible_case(_user(), case.reference) is not None:
        return redirect(url_for("console.case_view", reference=case.reference))
    tabs = readable_tabs(_user())
    return redirect(url_for("console.queue", tab=tabs[0]) if tabs else url_for("console.index"))


def _act(case: Case, action: Any, success: str) -> ResponseReturnValue:
    """Run a triage action: flash its outcome, 404 if the case vanished from the user's sight meanwhile."""
    try:
        action()
    except triage.CaseNotVisible:
        abort(404)
    except triage.StaleCase:
        flash(_("Someone else changed this case while you were reading it: reload to see their change."), "error")
    except triage.TriageError as exc:
        flash(str(exc), "error")
    else:
        flash(success, "ok")
    return _back(case)


@bp.route("/cases/<reference>/assign", methods=["POST"])
def assign(reference: str) -> ResponseReturnValue:
    """Assign, take, hand back or reassign."""
    user, case = _user(), _visible_or_404(reference)
    form = AssignForm(prefix="assign")
    choice = (form.assignee.data or "").strip()
    if choice == "me":
        assignee: User | None = user
    elif choice.isdigit():
        assignee = db.session.get(User, int(choice))
        if assignee is None:
            abort(400)
    else:
        assignee = None
    if not form.validate():
        flash(_("The reason is too long."), "error")
        return _back(case)
    message = _("Assigned to %(who)s.", who=assignee.email) if assignee else _("The case is unassigned.")
    seen = form.version.seen()
    return _act(
        case,
        lambda: triage.assign(case, assignee, actor=user, reason=form.reason.data, expected_version=seen),
        message,
    )


@bp.route("/cases/<reference>/status", methods=["POST"])
def change_status(reference: str) -> ResponseReturnValue:
    """Move the case along the workflow."""
    user, case = _user(), _visible_or_404(reference)
    form = StatusForm(prefix="status")
    if not form.validate():
        flash(_("The reason is too long."), "error")
        return _back(case)
    new = form.status.data or ""
    message = _("Status: %(status)s.", status=labels.label(labels.STATUS_LABELS, new))
    closure, seen = form.closure_method.data or None, form.version.seen()
    return _act(
        case,
        lambda: triage.change_status(
            case, new, actor=user, reason=form.reason.data, closure_method=closure, expected_version=seen
        ),
        message,
    )


@bp.route("/cases/<reference>/category", methods=["POST"])
def change_category(reference: str) -> ResponseReturnValue:
    """Correct the category; a restricted category moves the case to the restricted queue."""
    user, case = _user(), _visible_or_404(reference)
    form = CategoryForm(prefix="category")
    new = form.category.data or ""
    if not form.validate():
        flash(_("Please say why the category is wrong."), "error")
        return _back(case)
    was_general = case.queue == QUEUE_GENERAL
    message = _("Category: %(category)s.", category=labels.label(labels.CATEGORY_LABELS, new))
    if was_general and new in RESTRICTED_CATEGORIES:
        message = _(
            "Case %(reference)s is now in the restricted queue. Its text is sealed and only focal points can open it.",
            reference=case.reference,
        )
    seen = form.version.seen()
    return _act(
        case,
        lambda: triage.reclassify(case, new, actor=user, reason=form.reason.data, expected_version=seen),
        message,
    )


@bp.route("/cases/<reference>/notes", methods=["POST"])
def add_note(reference: str) -> ResponseReturnValue:
    """Add an internal note."""
    user, case = _user(), _visible_or_404(reference)
    form = NoteForm(prefix="note")
    if not form.validate():
        flash(_("Write the note first (at most 10,000 characters)."), "error")
        return _back(case)
    return _act(case, lambda: triage.add_note(case, form.body.data or "", actor=user), _("Note added."))


@bp.route("/cases/<reference>/referral", methods=["POST"])
def refer(reference: str) -> ResponseReturnValue:
    """Record the referral of a restricted case to the misconduct-reporting platform."""
    user, case = _user(), _visible_or_404(reference)
    form = ReferralForm(prefix="referral")
    if not form.validate() or form.referred_on.data is None:
        flash(_("Enter the referral id and the date it was made."), "error")
        return _back(case)
    referred_on = form.referred_on.data
    return _act(
        case,
        lambda: triage.refer(
            case, form.referral_id.data or "", referred_on, actor=user, expected_version=form.version.seen()
        ),
        _("Referral recorded."),
    )


@bp.route("/cases/<reference>/reply", methods=["POST"])
def reply(reference: str) -> ResponseReturnValue:
    """Queue a reply to the person (cfm.services.outbound sends it; never without consent or after STOP)."""
    user, case = _user(), _visible_or_404(reference)
    form = ReplyForm(prefix="reply")
    if form.use_template.data:  # no JavaScript needed: the case view fills the textarea from the template
        chosen = form.template.data or None
        return redirect(url_for("console.case_view", reference=case.reference, template=chosen, _anchor="reply"))
    if not form.validate():
        flash(_("Write the reply first (at most 1,600 characters)."), "error")
        return _back(case)
    try:
        outbound.queue_reply(case, form.body.data or "", user)
    except outbound.OutboundRefused as exc:
        flash(
            labels.label(labels.REPLY_REFUSALS, exc.code) if exc.code in labels.REPLY_REFUSALS else exc.message, "error"
        )
    else:
        flash(_("Reply queued; its delivery status shows in the thread."), "ok")
    return _back(case)
