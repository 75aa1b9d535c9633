"""Editable reply templates (issue 6): admin pages, placeholder rules, and the case view's template picker."""

from __future__ import annotations

import html
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from cfm.extensions import db
from cfm.models import Programme, ReplyTemplate, Reporter
from cfm.services import reply_templates
from cfm.services.admin import AdminError
from tests.cfm.console.conftest import World, audit_events, sign_in

ACK = {
    "en": "Thank you. Your reference is {reference}.",
    "ar": "شكرًا لك. رقمك المرجعي هو {reference}.",
    "sw": "Asante. Nambari yako ya kumbukumbu ni {reference} ({programme}).",
}


def textarea(page: str) -> str:
    """The reply textarea's content."""
    match = re.search(r'<textarea[^>]*name="reply-body"[^>]*>\r?\n?(.*?)</textarea>', page, re.S)
    assert match is not None
    return html.unescape(match.group(1))


def seed(languages: tuple[str, ...] = ("en", "ar", "sw"), programme: Programme | None = None) -> None:
    """The acknowledgement template in some languages."""
    for language in languages:
        reply_templates.create_template("Acknowledgement", language, ACK[language], programme, actor=None)


def reachable(world: World, name: str = "kenya_general", preferred: str | None = None, language: str = "fr") -> str:
    """Give the case a reporter who may be answered; returns its reference."""
    case = world.case(name)
    case.reporter = Reporter(phone="+254711222333", consent_to_contact=True, preferred_language=preferred)
    case.language = language
    db.session.commit()
    return case.reference


# --- admin pages ------------------------------------------------------------------------------------------------


def test_admin_creates_edits_and_deactivates_a_template(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    response = client.post(
        "/console/admin/templates/new",
        data={"name": "Closing", "language": "en", "programme": "", "body": "Case {reference} is closed."},
    )
    assert response.status_code == 302
    template = db.session.scalars(select(ReplyTemplate)).one()
    assert (template.name, template.language, template.programme_id, template.active) == ("Closing", "en", None, True)
    assert "Case {reference} is closed." in client.get("/console/admin/templates").get_data(as_text=True)
    response = client.post(
        f"/console/admin/templates/{template.id}",
        data={
            "name": "Closing",
            "language": "fr",
            "programme": "kenya",
            "body": "Dossier {reference} clos.",
            "reason": "French speakers",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert template.language == "fr" and template.programme is not None and template.programme.slug == "kenya"
    [event] = audit_events("reply_template.update", str(template.id))
    assert event.actor == world.users["admin"] and event.details is not None
    assert (
        event.details["changed"] == ["language", "body", "programme"] and event.details["reason"] == "French speakers"
    )
    client.post(f"/console/admin/templates/{template.id}/active", data={"active": "0"})
    db.session.expire_all()
    assert not template.active and audit_events("reply_template.deactivate", str(template.id))
    assert audit_events("reply_template.create", str(template.id))[0].actor == world.users["admin"]


@pytest.mark.parametrize(
    "body", ["Hello {name}, your code is {reference}.", "Code {reference.__class__}", "{0}", "Stray { brace", "x } y"]
)
def test_template_with_an_unknown_placeholder_is_refused(client: FlaskClient, world: World, body: str) -> None:
    sign_in(client, world.users["admin"])
    response = client.post(
        "/console/admin/templates/new", data={"name": "Bad", "language": "en", "programme": "", "body": body}
    )
    assert response.status_code == 400 and "Unknown placeholder" in response.get_data(as_text=True)
    assert db.session.scalars(select(ReplyTemplate)).first() is None
    with pytest.raises(AdminError) as refused:
        reply_templates.create_template("Bad", "en", body, None, actor=None)
    assert refused.value.code == "placeholder"


def test_template_longer_than_an_sms_thread_allows_is_refused(client: FlaskClient, world: World) -> None:
    sign_in(client, world.users["admin"])
    data = {"name": "Long", "language": "en", "programme": "", "body": "x" * 1601}
    assert client.post("/console/admin/templates/new", data=data).status_code == 400
    assert db.session.scalars(select(ReplyTemplate)).first() is None
    assert client.post("/console/admin/templates/new", data={**data, "body": "x" * 1600}).status_code == 302


def test_duplicate_name_and_language_is_refused(ctx: object, world: World) -> None:
    seed(("en",))
    with pytest.raises(AdminError) as refused:
        reply_templates.create_template("Acknowledgement", "en", "Again {reference}", None, actor=None)
    assert refused.value.code == "template_exists"
    kenya = db.session.scalars(select(Programme).where(Programme.slug == "kenya")).one()
    assert reply_templates.create_template("Acknowledgement", "en", "Kenya {reference}", kenya, actor=None).id


# --- the picker on the case view --------------------------------------------------------------------------------


@pytest.mark.parametrize(("preferred", "expected"), [("ar", "ar"), ("en", "en"), (None, "sw")])
def test_picker_fills_the_persons_language_and_substitutes_the_reference(
    client: FlaskClient, world: World, preferred: str | None, expected: str
) -> None:
    seed()
    ref = reachable(world, preferred=preferred)  # case language fr: no template, so the programme's (sw) is next
    sign_in(client, world.users["officer"])
    page = client.get(f"/console/cases/{ref}").get_data(as_text=True)
    assert 'name="reply-template"' in page and "Acknowledgement (" + expected + ")" in page
    assert textarea(page) == ""
    chosen = client.post(
        f"/console/cases/{ref}/reply", data={"reply-template": "Acknowledgement", "reply-use_template": "Use template"}
    )
    assert chosen.status_code == 302 and chosen.headers["Location"].endswith(
        f"/console/cases/{ref}?template=Acknowledgement#reply"
    )
    filled = textarea(client.get(chosen.headers["Location"]).get_data(as_text=True))
    assert filled == ACK[expected].replace("{reference}", ref).replace("{programme}", "Kenya resettlement")
    assert "{reference}" not in filled
    case = world.case("kenya_general")
    assert [m for m in case.messages if m.direction == "outbound"] == []  # using a template sends nothing


def test_picker_falls_back_to_english(client: FlaskClient, world: World) -> None:
    seed(("en", "ar"))
    ref = reachable(world, preferred="so", language="so")  # Somali person, Swahili programme: English is left
    sign_in(client, world.users["officer"])
    page = client.get(f"/console/cases/{ref}", query_string={"template": "Acknowledgement"}).get_data(as_text=True)
    assert textarea(page) == f"Thank you. Your reference is {ref}."


def test_programme_template_wins_and_other_programmes_and_inactive_ones_are_not_offered(
    client: FlaskClient, world: World
) -> None:
    kenya = db.session.scalars(select(Programme).where(Programme.slug == "kenya")).one()
    jordan = db.session.scalars(select(Programme).where(Programme.slug == "jordan")).one()
    seed(("en",))
    reply_templates.create_template("Acknowledgement", "en", "Kenya team: {reference}", kenya, actor=None)
    reply_templates.create_template("Jordan only", "en", "Jordan {reference}", jordan, actor=None)
    retired = reply_templates.create_template("Retired", "en", "Old {reference}", None, actor=None)
    reply_templates.set_template_active(retired, False, actor=None)  # type: ignore[arg-type]
    ref = reachable(world, preferred="en")
    sign_in(client, world.users["officer"])
    page = client.get(f"/console/cases/{ref}", query_string={"template": "Acknowledgement"}).get_data(as_text=True)
    assert textarea(page) == f"Kenya team: {ref}"
    assert "Jordan only" not in page and "Retired" not in page
    assert (
        textarea(client.get(f"/console/cases/{ref}", query_string={"template": "Retired"}).get_data(as_text=True)) == ""
    )


def test_reply_started_from_a_template_is_sent_as_edited(client: FlaskClient, world: World) -> None:
    seed(("en",))
    ref = reachable(world, preferred="en")
    sign_in(client, world.users["officer"])
    text = textarea(client.get(f"/console/cases/{ref}?template=Acknowledgement").get_data(as_text=True))
    client.post(f"/console/cases/{ref}/reply", data={"reply-body": text + " See you on Monday."})
    [reply] = [m for m in world.case("kenya_general").messages if m.direction == "outbound"]
    assert reply.text == f"Thank you. Your reference is {ref}. See you on Monday."


def test_no_picker_without_templates_or_when_no_reply_may_be_sent(client: FlaskClient, world: World) -> None:
    ref = reachable(world, preferred="en")
    sign_in(client, world.users["officer"])
    assert 'name="reply-template"' not in client.get(f"/console/cases/{ref}").get_data(as_text=True)
    seed(("en",))
    case = world.case("kenya_general")
    assert case.reporter is not None
    case.reporter.consent_to_contact = False
    db.session.commit()
    page = client.get(f"/console/cases/{ref}?template=Acknowledgement").get_data(as_text=True)
    assert 'name="reply-template"' not in page and "Thank you. Your reference" not in page


def test_picker_on_a_restricted_case_stays_behind_the_boundary(client: FlaskClient, world: World) -> None:
    seed(("en",))
    ref = reachable(world, "kenya_restricted", preferred="en")
    sign_in(client, world.users["officer"])
    assert client.get(f"/console/cases/{ref}?template=Acknowledgement").status_code == 404
    use = {"reply-template": "Acknowledgement", "reply-use_template": "Use template"}
    assert client.post(f"/console/cases/{ref}/reply", data=use).status_code == 404
    focal = client.application.test_client()
    sign_in(focal, world.users["focal"])
    page = focal.get(f"/console/cases/{ref}?template=Acknowledgement").get_data(as_text=True)
    assert textarea(page) == f"Thank you. Your reference is {ref}."
    assert audit_events("case.view", ref)


def test_demo_templates_in_english_french_and_arabic(ctx: object, world: World) -> None:
    created = reply_templates.seed_defaults()
    assert created == 9 and reply_templates.seed_defaults() == 0
    templates = reply_templates.list_templates()
    assert {t.language for t in templates} == {"en", "fr", "ar"}
    assert all(not reply_templates.unknown_placeholders(t.body) and "{reference}" in t.body for t in templates)
