"""The main console pages in the user's own language, right-to-left included (issue 7)."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from cfm.extensions import db
from tests.cfm.console.conftest import World, sign_in

LOCALES = [("ar", "rtl", "تسجيل الخروج"), ("en", "ltr", "Sign out")]
# (user, pages): the officer's queue, case and account pages; the focal point's restricted queue and case.
PAGES = [
    ("officer", ("/console/queue/general", "/console/cases/{kenya_general}", "/console/account")),
    ("focal", ("/console/queue/restricted", "/console/cases/{kenya_restricted}")),
]


@pytest.mark.parametrize(("person", "paths"), PAGES)
@pytest.mark.parametrize(("lang", "direction", "sign_out"), LOCALES)
def test_console_pages_follow_the_user_locale(
    client: FlaskClient, world: World, person: str, paths: tuple[str, ...], lang: str, direction: str, sign_out: str
) -> None:
    account = world.user(person)
    account.locale = lang
    db.session.commit()
    sign_in(client, world.users[person])
    for template in paths:
        path = template.format(**world.cases)
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        tag = re.search(r"<html[^>]*>", html)
        assert tag is not None
        assert f'lang="{lang}"' in tag.group(0) and f'dir="{direction}"' in tag.group(0), (path, tag.group(0))
        assert sign_out in html, path
