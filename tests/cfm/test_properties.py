"""Property tests (issue 8) of the parsers on the cfm side and in the classifier: partner API payloads (plain JSON,
Kobo, RapidPro) from arbitrary JSON, reference codes, and the classifier's text cleaning.

None needs the database: they run once, not per backend.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cfm.api.payloads import KINDS, detect, parse_json, parse_kobo, parse_rapidpro
from cfm.config import DEFAULTS
from cfm.services.reference import ALPHABET, new_reference, normalise_reference
from channels.base import MAX_TEXT_LENGTH, ChannelError, IntakeRequest
from classifier import language, pipeline

PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
REFERENCE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")

any_text = st.text(st.characters(exclude_categories=()), max_size=200)
texts = st.one_of(any_text, st.sampled_from(["", " ", "a\x00b", "\ud800x", "\u202e", "x" * (MAX_TEXT_LENGTH + 1)]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), texts)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3), max_leaves=8
)


def assert_clean(request: IntakeRequest) -> None:
    """The invariants of an accepted submission."""
    assert request.channel == "api"
    assert 0 < len(request.text) <= MAX_TEXT_LENGTH
    assert "\x00" not in request.text and request.text == request.text.strip()
    request.text.encode("utf-8")
    assert unicodedata.is_normalized("NFC", request.text)
    assert request.provider_id is None or len(request.provider_id) <= 128
    assert request.contact.phone is None or E164.fullmatch(request.contact.phone)
    for value in (request.contact.name, request.contact.email):
        assert value is None or "\x00" not in value


def accepted(parse: Any, *args: Any, **kwargs: Any) -> IntakeRequest | None:
    """The parser's request, or None when it raised ChannelError (anything else fails the test)."""
    try:
        result = parse(*args, **kwargs)
    except ChannelError as exc:
        error = exc
    else:
        return result[0] if isinstance(result, tuple) else result
    assert error.code and error.message
    return None


# --- partner API ----------------------------------------------------------------------------------------------

json_bodies = st.one_of(
    st.dictionaries(any_text, json_values, max_size=6),
    st.fixed_dictionaries(
        {"text": json_values},
        optional={
            "external_id": json_values,
            "language": json_values,
            "consent_to_contact": json_values,
            "received_at": st.one_of(
                json_values, st.sampled_from(["2024-05-01T10:00:00Z", "1999-01-01", "9999-12-31"])
            ),
            "contact": st.one_of(
                json_values,
                st.fixed_dictionaries({}, optional={"name": json_values, "phone": json_values, "email": json_values}),
            ),
        },
    ),
)


@PROPERTY
@given(json_bodies)
@example({"text": "hello", "contact": {"phone": "+254 711 222 333"}})
@example({"text": "x" * 10_000})
def test_plain_json_gives_a_clean_request_or_a_channel_error(body: dict[str, Any]) -> None:
    assert detect(body) in KINDS
    request = accepted(parse_json, body, programme="kenya", namespace="1")
    if request is not None:
        assert_clean(request)


kobo_bodies = st.fixed_dictionaries(
    {"_uuid": json_values},
    optional={
        "feedback": json_values,
        "group/comment": json_values,
        "language": json_values,
        "consent": json_values,
        "_submission_time": json_values,
        "meta/instanceID": json_values,
        "phone": json_values,
    },
).map(lambda body: {**body})


@PROPERTY
@given(st.one_of(kobo_bodies, st.dictionaries(any_text, json_values, max_size=5)))
@example({"_uuid": "a", "feedback": "\x00"})
def test_kobo_submissions_give_a_clean_request_or_a_channel_error(body: dict[str, Any]) -> None:
    request = accepted(parse_kobo, body, DEFAULTS["API_KOBO_FIELDS"], programme="kenya", namespace="1")
    if request is not None:
        assert_clean(request)


rapidpro_bodies = st.fixed_dictionaries(
    {
        "contact": st.one_of(
            json_values,
            st.fixed_dictionaries({}, optional={"urn": json_values, "name": json_values, "language": json_values}),
        ),
        "flow": st.one_of(json_values, st.just({"uuid": "f", "name": "CFM"})),
        "run": st.one_of(json_values, st.fixed_dictionaries({"uuid": json_values})),
    },
    optional={
        "results": st.one_of(
            json_values,
            st.dictionaries(
                st.sampled_from(["feedback", "consent", "text"]),
                st.fixed_dictionaries({}, optional={"value": json_values, "category": json_values}),
                max_size=3,
            ),
        ),
        "input": st.one_of(json_values, st.fixed_dictionaries({}, optional={"text": json_values, "uuid": json_values})),
    },
)


@PROPERTY
@given(rapidpro_bodies)
@example({"contact": {"urn": "tel:+254711222333"}, "flow": {}, "run": {"uuid": "r"}, "input": {"text": "hi"}})
@example({"contact": {"urn": "whatsapp:254711222333"}, "flow": {}, "run": {"uuid": "r"}, "input": {"text": "hi"}})
def test_rapidpro_webhooks_give_a_clean_request_or_a_channel_error(body: dict[str, Any]) -> None:
    request = accepted(
        parse_rapidpro,
        body,
        text_results=DEFAULTS["API_RAPIDPRO_TEXT_RESULTS"],
        consent_results=DEFAULTS["API_RAPIDPRO_CONSENT_RESULTS"],
        programme="kenya",
        namespace="1",
    )
    if request is not None:
        assert_clean(request)


# --- reference codes --------------------------------------------------------------------------------------------


@PROPERTY
@given(st.one_of(any_text, st.none(), st.integers(), st.binary(max_size=12)))
@example("7qk2m9xd")
@example("O0IL-1111")
def test_normalise_reference_never_raises_and_answers_a_canonical_code_or_none(value: Any) -> None:
    code = normalise_reference(value)
    assert code is None or REFERENCE.fullmatch(code)
    if code is not None:
        assert normalise_reference(code) == code  # idempotent


codes = st.text(st.sampled_from(ALPHABET), min_size=8, max_size=8).map(lambda s: f"{s[:4]}-{s[4:]}")


@PROPERTY
@given(codes, st.sampled_from(["{}", "{lower}", "{compact}", " {} ", "\u200f{}", "{spaced}", "{misread}"]))
def test_a_code_survives_every_way_it_is_typed_back(code: str, how: str) -> None:
    compact = code.replace("-", "")
    typed = how.format(
        code,
        lower=code.lower(),
        compact=compact,
        spaced=f"{compact[:4]} {compact[4:]}",
        misread=code.replace("0", "O").replace("1", "l"),
    )
    assert normalise_reference(typed) == code


def test_new_references_round_trip() -> None:
    for _ in range(200):
        code = new_reference()
        assert REFERENCE.fullmatch(code) and normalise_reference(code) == code


# --- the classifier's text cleaning -----------------------------------------------------------------------------


@PROPERTY
@given(
    st.one_of(any_text, st.text(max_size=5).map(lambda t: t * 5000), st.none(), st.integers(), st.binary(max_size=40))
)
@example("مرحـــــبا ١٢٣٤٥٦٧٨٩")
@example("\ud800\x00\x07\ufffe")
def test_classifier_text_cleaning_never_raises_and_yields_model_safe_text(value: Any) -> None:
    normal = pipeline.normalise(value)
    assert isinstance(normal, str)
    normal.encode("utf-8")  # no lone surrogates reach the model
    assert normal == " ".join(normal.split())  # single spaces, no control characters as words
    assert not any(unicodedata.category(ch) == "Cc" for ch in normal)
    # Not asserted: idempotence. NFKD after casefold lets compatibility letters back in upper case ("🅂" -> "S"),
    # so normalise("🅂") != normalise(normalise("🅂")); harmless for the model, reported on issue 8.
    clean = language.clean(value)
    assert isinstance(clean, str) and len(clean) <= language.MAX_CHARS
    clean.encode("utf-8")
    assert "\x00" not in clean


# --- multiple-choice survey answers (issue 6 follow-up) ---------------------------------------------------------


@st.composite
def multiple_choice_answers(draw: st.DrawFn) -> tuple[list[str], int | None, Any]:
    """Option ids of a question, its max_choices, and what a browser, Kobo or a bot might send for it."""
    ids = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True), min_size=2, max_size=6, unique=True))
    limit = draw(st.one_of(st.none(), st.integers(1, len(ids))))
    known = st.sampled_from(ids)
    value = st.one_of(
        known,
        known.map(lambda i: f" {i}\t"),
        st.lists(known, max_size=4).map(" ".join),  # a Kobo select_multiple string
        st.sampled_from(["", " ", "Unknown", "a b", "\x00"]),
        any_text,
        st.binary(max_size=8),
        st.none(),
        st.integers(),
    )
    sent = draw(
        st.one_of(
            value,
            st.lists(value, max_size=8),
            st.permutations(ids).flatmap(lambda p: st.integers(0, len(p)).map(lambda n: p[:n])),  # valid boxes
            st.dictionaries(any_text, value, max_size=2),
        )
    )
    return ids, limit, sent


@PROPERTY
@given(multiple_choice_answers())
@example((["food", "cash"], None, ["cash", "food"]))
@example((["food", "cash"], 1, "food cash"))
@example((["food", "cash"], None, ["food", "food"]))
@example((["food", "cash"], None, ["food", b"\xff"]))
def test_multiple_choice_answers_are_known_unique_ids_within_the_limit_or_a_channel_error(
    case: tuple[list[str], int | None, Any],
) -> None:
    from channels.web import SurveyDefinition, chosen_options, survey_answers  # appended section: imports kept here

    ids, limit, sent = case
    question: dict[str, Any] = {
        "id": "pick",
        "type": "multiple_choice",
        "text": "?",
        "options": [{"id": i, "text": i} for i in ids],
    }
    if limit is not None:
        question["max_choices"] = limit
    definition = SurveyDefinition.from_dict({"slug": "prop", "title": "P", "questions": [question]})
    valid = isinstance(sent, list) and all(isinstance(v, str) and v in ids for v in sent)
    valid = valid and len(set(sent)) == len(sent) and (limit is None or len(sent) <= limit)
    error: ChannelError | None = None
    try:
        chosen = chosen_options(definition.questions[0], sent)
    except ChannelError as exc:
        error = exc
    if error is not None:
        assert not valid, "a valid set of ticked boxes was refused"
        assert error.field == "q_pick" and error.message
        assert error.code in {"invalid_choice", "duplicate_choice", "too_many_choices", "invalid_encoding"}
        return
    if chosen is None:  # nothing ticked: only blanks were sent
        assert not (valid and sent)
        return
    assert chosen == sorted(set(chosen), key=ids.index)  # known ids, each once, in the definition's order
    assert limit is None or len(chosen) <= limit
    if valid:
        assert chosen == sorted(sent, key=ids.index)
    assert chosen_options(definition.questions[0], " ".join(reversed(chosen))) == chosen  # the Kobo form agrees
    assert survey_answers(definition, {"q_pick": sent}, programme="kenya").structured == {"pick": chosen}
