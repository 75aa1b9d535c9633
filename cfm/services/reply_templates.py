"""Editable reply templates (issue 6): per language, for one programme or all; officers start replies from them.

A body may hold the placeholders {reference} and {programme} only; anything else in braces is refused when the
template is saved, so that substitution is a plain text replacement (never str.format on admin-written text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import or_, select

from cfm.extensions import db
from cfm.models import Case, Programme, ReplyTemplate, User
from cfm.services import audit
from cfm.services.admin import LANGUAGE, AdminError, with_reason

PLACEHOLDERS = ("reference", "programme")
MAX_BODY = 1600
MAX_NAME = 100
FALLBACK_LANGUAGE = "en"
_BRACED = re.compile(r"\{([^{}]*)\}")


def unknown_placeholders(body: str) -> list[str]:
    """Placeholders other than {reference} and {programme}, and stray braces, in order of appearance."""
    bad = [f"{{{name}}}" for name in _BRACED.findall(body) if name not in PLACEHOLDERS]
    rest = _BRACED.sub("", body)
    bad += [ch for ch in rest if ch in "{}"]
    return list(dict.fromkeys(bad))


def base_language(code: str | None) -> str | None:
    """The language part of a tag, lower case: fa_AF and fa-af give fa."""
    if not code:
        return None
    return re.split(r"[_-]", code.strip())[0].lower() or None


def _check(name: str, language: str, body: str) -> tuple[str, str, str]:
    """Validated name, language and body; AdminError with a code otherwise."""
    name, body = name.strip(), body.strip()
    if not name or len(name) > MAX_NAME:
        raise AdminError(f"The name must have 1 to {MAX_NAME} characters.", "template_name", count=MAX_NAME)
    if not LANGUAGE.match(language):
        raise AdminError(f"Not a language code: {language}.", "language", language=language)
    if not body or len(body) > MAX_BODY:
        raise AdminError(f"The text must have 1 to {MAX_BODY} characters.", "template_body", count=MAX_BODY)
    bad = unknown_placeholders(body)
    if bad:
        raise AdminError(
            f"Unknown placeholder: {', '.join(bad)} (use {{reference}} and {{programme}} only).",
            "placeholder",
            placeholders=", ".join(bad),
        )
    return name, base_language(language) or language, body


def _duplicate(programme_id: int | None, name: str, language: str, exclude: int | None = None) -> bool:
    """True when another template has this name and language for the same programme (or for all)."""
    query = select(ReplyTemplate.id).where(
        ReplyTemplate.name == name,
        ReplyTemplate.language == language,
        ReplyTemplate.programme_id.is_(None) if programme_id is None else ReplyTemplate.programme_id == programme_id,
    )
    if exclude is not None:
        query = query.where(ReplyTemplate.id != exclude)
    return db.session.scalars(query).first() is not None


def list_templates() -> list[ReplyTemplate]:
    """Every template: by name, then language, the all-programme ones first."""
    query = select(ReplyTemplate).order_by(
        ReplyTemplate.name, ReplyTemplate.language, ReplyTemplate.programme_id.is_not(None), ReplyTemplate.id
    )
    return list(db.session.scalars(query))


def get_template(template_id: int) -> ReplyTemplate | None:
    """One template by id."""
    return db.session.get(ReplyTemplate, template_id)


def create_template(
    name: str, language: str, body: str, programme: Programme | None = None, *, actor: User | None
) -> ReplyTemplate:
    """A new active template."""
    name, language, body = _check(name, language, body)
    if _duplicate(programme.id if programme else None, name, language):
        raise AdminError("A template with this name and language exists already.", "template_exists")
    template = ReplyTemplate(name=name, language=language, body=body, programme=programme, active=True)
    db.session.add(template)
    db.session.flush()
    audit.record(
        "reply_template.create",
        actor=actor,
        object_type="reply_template",
        object_ref=str(template.id),
        details={"name": name, "language": language, "programme": programme.slug if programme else None},
    )
    db.session.commit()
    return template


def update_template(
    template: ReplyTemplate,
    name: str,
    language: str,
    body: str,
    programme: Programme | None,
    *,
    actor: User,
    reason: str | None = None,
) -> ReplyTemplate:
    """Change a template's name, language, programme or text."""
    name, language, body = _check(name, language, body)
    if _duplicate(programme.id if programme else None, name, language, exclude=template.id):
        raise AdminError("A template with this name and language exists already.", "template_exists")
    changed = [
        key
        for key, old, new in (
            ("name", template.name, name),
            ("language", template.language, language),
            ("body", template.body, body),
            ("programme", template.programme_id, programme.id if programme else None),
        )
        if old != new
    ]
    template.name, template.language, template.body, template.programme = name, language, body, programme
    if changed:
        audit.record(
            "reply_template.update",
            actor=actor,
            object_type="reply_template",
            object_ref=str(template.id),
            details=with_reason({"changed": changed, "name": name, "language": language}, reason),
        )
        db.session.commit()
    return template


def set_template_active(template: ReplyTemplate, active: bool, *, actor: User) -> ReplyTemplate:
    """Deactivate (officers no longer see it) or reactivate a template."""
    if template.active != active:
        template.active = active
        audit.record(
            "reply_template.activate" if active else "reply_template.deactivate",
            actor=actor,
            object_type="reply_template",
            object_ref=str(template.id),
            details={"name": template.name, "language": template.language},
        )
        db.session.commit()
    return template


def languages_for(case: Case) -> list[str]:
    """The languages to look for, best first: the person's, the case's, the programme's default, then English."""
    reporter = case.reporter
    candidates: Iterable[str | None] = (
        reporter.preferred_language if reporter else None,
        case.language,
        case.programme.default_language if case.programme else None,
        FALLBACK_LANGUAGE,
    )
    return list(dict.fromkeys(code for code in map(base_language, candidates) if code))


def templates_for(case: Case) -> dict[str, ReplyTemplate]:
    """For each active template name usable on this case, the version in the best available language.

    A programme's own template wins over an all-programme one in the same language.
    """
    query = select(ReplyTemplate).where(
        ReplyTemplate.active.is_(True),
        or_(ReplyTemplate.programme_id.is_(None), ReplyTemplate.programme_id == case.programme_id),
    )
    rank = {code: i for i, code in enumerate(languages_for(case))}
    best: dict[str, tuple[tuple[int, int], ReplyTemplate]] = {}
    for template in db.session.scalars(query):
        if template.language not in rank:
            continue
        key = (rank[template.language], 0 if template.programme_id is not None else 1)
        if template.name not in best or key < best[template.name][0]:
            best[template.name] = (key, template)
    return {name: best[name][1] for name in sorted(best)}


def render(template: ReplyTemplate, case: Case) -> str:
    """The template's text for this case: {reference} and {programme} replaced."""
    values = {"reference": case.reference, "programme": case.programme.name if case.programme else ""}
    return _BRACED.sub(lambda m: values.get(m.group(1), m.group(0)), template.body)


def text_for(case: Case, name: str | None) -> str | None:
    """The rendered template of that name for the case, or None when there is none."""
    if not name:
        return None
    template = templates_for(case).get(name)
    return render(template, case) if template is not None else None


def picker(case: Case, chosen: str | None) -> tuple[list[tuple[str, str]], str | None]:
    """The case view's template choices (name, "name (language)") and the chosen template's text, if any."""
    available = templates_for(case)
    choices = [(name, f"{name} ({t.language})") for name, t in available.items()]
    text = render(available[chosen], case) if chosen and chosen in available else None
    return choices, text


DEFAULTS: dict[str, dict[str, str]] = {
    "Acknowledgement": {
        "en": "Thank you for your message to {programme}. Your reference is {reference}. "
        "We are looking into it and will reply to you.",
        "fr": "Merci pour votre message à {programme}. Votre référence est {reference}. "
        "Nous l'examinons et vous répondrons.",
        "ar": "شكرًا على رسالتك إلى {programme}. رقمك المرجعي هو {reference}. نحن ندرس رسالتك وسنرد عليك.",
    },
    "More information needed": {
        "en": "About your message {reference}: we need a little more information to help you. "
        "Please reply to this message with the details.",
        "fr": "Concernant votre message {reference} : nous avons besoin d'un peu plus d'informations pour vous aider. "
        "Merci de répondre à ce message en donnant les détails.",
        "ar": "بخصوص رسالتك {reference}: نحتاج إلى معلومات إضافية لمساعدتك. يرجى الرد على هذه الرسالة بالتفاصيل.",
    },
    "Case closed": {
        "en": "Your feedback {reference} has been dealt with and the case is now closed. "
        "Thank you for helping us improve. You can write to us again at any time.",
        "fr": "Votre message {reference} a été traité et le dossier est maintenant clos. "
        "Merci de nous aider à nous améliorer. Vous pouvez nous écrire à tout moment.",
        "ar": "تمت معالجة ملاحظتك {reference} وأُغلقت الحالة. شكرًا لمساعدتنا على التحسن. "
        "يمكنك مراسلتنا مرة أخرى في أي وقت.",
    },
}


def seed_defaults() -> int:
    """Create the shipped all-programme templates that do not exist yet (used by `cfm demo`); returns how many."""
    created = 0
    for name, bodies in DEFAULTS.items():
        for language, body in bodies.items():
            if not _duplicate(None, name, language):
                create_template(name, language, body, None, actor=None)
                created += 1
    return created
