"""GET /console/dashboard: aggregate figures and charts (issue 6); the figures come from cfm.services.dashboard."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import g, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import format_date, format_decimal, format_percent, format_timedelta, get_locale
from flask_babel import gettext as _

from cfm.console import bp, labels
from cfm.console.views import _user
from cfm.services import dashboard as figures_service
from cfm.services.dashboard import Cell, ChoiceQuestion, Dashboard, Median, SurveyResult
from channels.web import localised

DIMENSION_TITLES = {
    "category": lambda: _("Cases by category"),
    "channel": lambda: _("Cases by channel"),
    "language": lambda: _("Cases by language"),
    "programme": lambda: _("Cases by programme"),
    "status": lambda: _("Cases by status"),
}
DIMENSION_HEADS = {
    "category": lambda: _("Category"),
    "channel": lambda: _("Channel"),
    "language": lambda: _("Language"),
    "programme": lambda: _("Programme"),
    "status": lambda: _("Status"),
}
YES_NO_LABELS = {"yes": lambda: _("Yes"), "no": lambda: _("No")}


def _language_name(code: str) -> str:
    """A language code as a name in the console's language."""
    locale = get_locale()
    name = locale.languages.get(code) if locale is not None else None
    return f"{name} ({code})" if name else code


def _key_label(dimension: str, key: str, programme_names: dict[str, str]) -> str:
    """The translated label of a breakdown key."""
    if key == figures_service.UNKNOWN:
        return _("Unknown")
    if dimension == "category":
        return labels.label(labels.CATEGORY_LABELS, key)
    if dimension == "channel":
        return labels.label(labels.CHANNEL_LABELS, key)
    if dimension == "status":
        return labels.label(labels.STATUS_LABELS, key)
    if dimension == "programme":
        return programme_names.get(key, key)
    return _language_name(key)


def _duration(median: Median) -> str:
    """A median duration in words ('3 days'), or a dash."""
    if median.seconds is None:
        return "—"
    return str(format_timedelta(timedelta(seconds=median.seconds), threshold=1.5))


def _table(cells: list[Cell], names: list[str]) -> list[dict[str, Any]]:
    """Rows for an accessible table: label, shown figure, and whether it is hidden."""
    return [{"label": n, "display": c.display, "suppressed": c.suppressed} for c, n in zip(cells, names, strict=True)]


def _survey_chart(survey: SurveyResult, locale: str) -> dict[str, Any]:
    """One stacked bar per rating question: how many answered 1, 2, 3, 4, 5."""
    questions = [localised(q.text, locale) for q in survey.questions]
    datasets = []
    for index, rating in enumerate(figures_service.RATING_VALUES):
        datasets.append(
            {
                "label": str(rating),
                "data": [q.cells[index].value for q in survey.questions],
                "scale": index,
            }
        )
    return {
        "id": f"survey-{survey.slug}",
        "kind": "stacked",
        "survey": survey.slug,
        "title": _("Ratings"),
        "labels": questions,
        "datasets": datasets,
        "rows": [
            {
                "label": localised(q.text, locale),
                "low": localised(q.low, locale) if q.low else "",
                "high": localised(q.high, locale) if q.high else "",
                "cells": [c.display for c in q.cells],
                "answered": q.answered.display,
                "mean": format_decimal(q.mean, format="0.0") if q.mean is not None else "—",
            }
            for q in survey.questions
        ],
    }


def _choice_chart(survey: SurveyResult, question: ChoiceQuestion, locale: str) -> dict[str, Any]:
    """One horizontal bar per option: how many respondents chose it (options in the definition's order)."""
    names = [
        YES_NO_LABELS[o.id]() if question.type == "yes_no" else localised(o.text, locale) for o in question.options
    ]
    shares = [format_percent(o.share, format="#,##0%") if o.share is not None else None for o in question.options]
    return {
        "id": f"survey-{survey.slug}-{question.id}",
        "kind": "choice",
        "horizontal": True,
        "survey": survey.slug,
        "title": localised(question.text, locale),
        "labels": names,
        "datasets": [{"label": _("People"), "data": [o.count.value for o in question.options]}],
        "shares": shares,
        "multiple": question.type == "multiple_choice",
        "answered": question.answered.display,
        "empty": question.answered.value == 0,  # nobody answered: a sentence instead of an empty chart
        "table": [
            {"label": name, "display": o.count.display, "suppressed": o.count.suppressed, "share": share or "—"}
            for name, o, share in zip(names, question.options, shares, strict=True)
        ],
    }


def _survey_charts(survey: SurveyResult, locale: str) -> list[dict[str, Any]]:
    """The ratings chart of a survey (if it asks for any), then one chart per yes/no or choice question."""
    ratings = [_survey_chart(survey, locale)] if survey.questions else []
    return ratings + [_choice_chart(survey, q, locale) for q in survey.choices]


def survey_sections(data: Dashboard, all_charts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per survey: its title, responses in the period, and its charts (for the page's survey part)."""
    locale = str(get_locale() or "en")
    return [
        {
            "slug": survey.slug,
            "title": localised(survey.title, locale),
            "responses": survey.responses.display,
            "charts": [c for c in all_charts if c.get("survey") == survey.slug],
        }
        for survey in data.surveys
    ]


def charts(data: Dashboard) -> list[dict[str, Any]]:
    """Every chart with its labels and figures (None where suppressed), in page order."""
    if not data.allowed:
        return []
    locale = str(get_locale() or "en")
    weeks = [format_date(date.fromisoformat(c.key), "d MMM") for c in data.weeks]
    result: list[dict[str, Any]] = [
        {
            "id": "weeks",
            "kind": "line",
            "title": _("Cases received per week"),
            "head": _("Week starting"),
            "labels": weeks,
            "datasets": [{"label": _("Cases"), "data": figures_service.figures(data.weeks)}],
            "table": _table(data.weeks, [format_date(date.fromisoformat(c.key)) for c in data.weeks]),
        }
    ]
    names = {p.slug: p.name for p in data.programmes}
    for dimension in figures_service.DIMENSIONS:
        cells = data.breakdowns.get(dimension, [])
        if dimension == "programme" and len(data.programmes) < 2:
            continue  # one programme: the chart would repeat the total
        shown = [_key_label(dimension, c.key, names) for c in cells]
        result.append(
            {
                "id": dimension,
                "kind": "bar",
                "horizontal": dimension in ("category", "status", "programme", "language"),
                "title": DIMENSION_TITLES[dimension](),
                "head": DIMENSION_HEADS[dimension](),
                "labels": shown,
                "datasets": [{"label": _("Cases"), "data": figures_service.figures(cells)}],
                "table": _table(cells, shown),
            }
        )
    for survey in data.surveys:
        result.extend(_survey_charts(survey, locale))
    return result


@bp.route("/dashboard")
def dashboard() -> ResponseReturnValue:
    """Figures for the user's programmes; report viewers see aggregates only, focal points a restricted count."""
    user = _user()
    filters = figures_service.DashboardFilters.from_args(request.args)
    data = figures_service.build(user, filters)
    li = g.get("localeinfo")
    settings = {
        "rtl": bool(li and li.rtl),
        "locale": li.language_tag if li else "en",
        "hidden": _("<5"),
        "gaps": _("Weeks with fewer than 5 cases are left out of the line; the table lists every week."),
        "table": _("Numbers"),
    }
    all_charts = charts(data)
    return render_template(
        "console/dashboard.html",
        d=data,
        charts=all_charts,
        surveys=survey_sections(data, all_charts),
        settings=settings,
        first_response=_duration(data.first_response),
        closure=_duration(data.closure),
        current_tab="dashboard",
    )
