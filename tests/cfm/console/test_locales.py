"""The main console pages in the officer's own language, right-to-left included (issue 7)."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from cfm.extensions import db
from tests.cfm.console.conftest import World, sign_in

LOCALES = [("ar", "rtl", "تسجيل الخروج"), ("en", "ltr", "Sign out")]


def html_tag(html: str) -> str:
    """The opening <html> tag."""
    match = re.search(r"<html[^>]*>", html)
    assert match is not None
    return match.group(0)


@pytest.mark.parametrize(("lang", "direction", "sign_out"), LOCALES)
def test_officer_pages_follow_the_officer_locale(
    client: FlaskClient, world: World, lang: str, direction: str, sign_out: str
) -> None:
    officer = world.user("officer")
    officer.locale = lang
    db.session.commit()
    sign_in(client, world.users["officer"])
    for path in ("/console/queue/general", f"/console/cases/{world.cases['kenya_general']}", "/console/account"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        tag = html_tag(html)
        assert f'lang="{lang}"' in tag and f'dir="{direction}"' in tag, (path, tag)
        assert sign_out in html, path


@pytest.mark.parametrize(("lang", "direction", "sign_out"), LOCALES)
def test_focal_point_pages_follow_the_focal_point_locale(
    client: FlaskClient, world: World, lang: str, direction: str, sign_out: str
) -> None:
    focal = world.user("focal")
    focal.locale = lang
    db.session.commit()
    sign_in(client, world.users["focal"])
    for path in ("/console/queue/restricted", f"/console/cases/{world.cases['kenya_restricted']}"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        tag = html_tag(html)
        assert f'lang="{lang}"' in tag and f'dir="{direction}"' in tag, (path, tag)
        assert sign_out in html, path
