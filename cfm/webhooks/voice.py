"""The IVR: POST /voice/twilio (language menu), /language (prompt and <Record>), /recording and /transcription.

The recording callback and the transcription callback carry the same RecordingSid and so name one case, in
whichever order they arrive: the first creates it; a transcription that comes after the recording replaces the
placeholder text (cfm.services.conversations.complete_voicemail). The placeholder stays only when no
transcription comes. The recording URL is kept as a reference; the audio is never fetched here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from babel import Locale
from flask import abort, current_app, request
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, gettext
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse

from cfm.extensions import db
from cfm.i18n import locale_for_language
from cfm.models import Programme
from cfm.services import conversations
from cfm.services.intake import IntakeUnavailable, submit
from cfm.webhooks import bp, channel_error, external_url, programme_by_number, twiml, verified
from channels.base import ChannelError
from channels.hotline import parse_ivr_transcription

log = logging.getLogger(__name__)

# Languages Twilio's <Say> speaks (its language attribute); others need a recorded prompt (IVR_PROMPT_URLS).
SAY_LANGUAGES: dict[str, str] = {
    "en": "en-US",
    "fr": "fr-FR",
    "es": "es-ES",
    "ar": "arb",
    "ru": "ru-RU",
    "uk": "uk-UA",
}
# Names people use for a language when the locale data says something else ("fa" is Dari in our operations).
LANGUAGE_NAMES: dict[str, tuple[str, str]] = {"fa": ("Dari", "دری")}
MENU_TIMEOUT_SECONDS = 6


def _call_programme(form: Mapping[str, str]) -> Programme | None:
    """The programme of the number called."""
    return programme_by_number(form, "To")


def menu_languages(programme: Programme | None) -> list[str]:
    """The menu: the programme's language first, then IVR_LANGUAGES; at most nine (one digit each)."""
    configured = [str(code) for code in current_app.config.get("IVR_LANGUAGES") or []]
    first = [programme.default_language] if programme is not None else []
    return list(dict.fromkeys(first + configured or ["en"]))[:9]


def _language_name(code: str, spoken: bool) -> str:
    """The language's own name when a voice speaks it, its English name when the English voice must."""
    if code in LANGUAGE_NAMES:
        english, native = LANGUAGE_NAMES[code]
        return native if spoken else english
    try:
        locale = Locale.parse(code)
        return str(locale.get_language_name(locale if spoken else "en") or code)
    except (ValueError, TypeError):
        return code


def _say(response_or_gather: object, text: str, language: str) -> None:
    """<Say> in the language's voice, or in English when Twilio has no voice for it."""
    say = SAY_LANGUAGES.get(language, SAY_LANGUAGES["en"])
    response_or_gather.say(text, language=say)  # type: ignore[attr-defined]


def _locale(language: str) -> str:
    """The UI locale for a language code (fa -> fa_AF), English when we have none."""
    return locale_for_language(language) or "en"


def _text_language(language: str) -> str:
    """The language the prompt text is written in: the caller's when Twilio speaks it, else English."""
    return language if language in SAY_LANGUAGES else "en"


@bp.post("/voice/twilio")
def voice_incoming() -> ResponseReturnValue:
    """An incoming call: the language menu (one language: straight to the prompt)."""
    _form, programme = verified(_call_programme)
    response = VoiceResponse()
    if programme is None:
        # A number of our Twilio account that no programme owns: say so rather than record what nobody will read.
        log.warning("voice: call to a number no programme owns")
        _say(response, "Sorry, this number is not in service. Goodbye.", "en")
        response.hangup()
        return twiml(str(response))
    languages = menu_languages(programme)
    if len(languages) == 1:
        response.redirect(external_url("webhooks.voice_language", lang=languages[0]), method="POST")
        return twiml(str(response))
    gather = response.gather(
        num_digits=1, action=external_url("webhooks.voice_language"), method="POST", timeout=MENU_TIMEOUT_SECONDS
    )
    menu_url = (current_app.config.get("IVR_PROMPT_URLS") or {}).get("menu")
    if menu_url:
        gather.play(menu_url)
    else:
        for digit, language in enumerate(languages, start=1):
            spoken = _text_language(language)
            with force_locale(_locale(spoken)):
                text = gettext(
                    "For %(language)s, press %(digit)s.",
                    language=_language_name(language, spoken == language),
                    digit=digit,
                )
            _say(gather, text, language)
    # No key pressed: carry on in the programme's language.
    response.redirect(external_url("webhooks.voice_language", lang=languages[0]), method="POST")
    return twiml(str(response))


@bp.post("/voice/twilio/language")
def voice_language() -> ResponseReturnValue:
    """The chosen language: a short prompt, then <Record> with transcription and both callbacks."""
    form, programme = verified(_call_programme)
    languages = menu_languages(programme)
    language = _chosen(form, languages)
    response = VoiceResponse()
    prompt_url = (current_app.config.get("IVR_PROMPT_URLS") or {}).get(language)
    if prompt_url:
        response.play(prompt_url)
    else:
        with force_locale(_locale(_text_language(language))):
            text = gettext("Please tell us your feedback after the tone. Press the hash key when you have finished.")
        _say(response, text, language)
    response.record(
        action=external_url("webhooks.voice_recording", lang=language),
        method="POST",
        max_length=int(current_app.config["IVR_MAX_RECORDING_SECONDS"]),
        timeout=5,
        finish_on_key="#",
        play_beep=True,
        transcribe=True,
        transcribe_callback=external_url("webhooks.voice_transcription", lang=language),
    )
    # Reached only when nothing was recorded.
    with force_locale(_locale(_text_language(language))):
        _say(response, gettext("We did not receive a message. Goodbye."), language)
    response.hangup()
    return twiml(str(response))


def _chosen(form: Mapping[str, str], languages: list[str]) -> str:
    """The language for the pressed digit, else the one in the URL, else the first of the menu."""
    digits = str(form.get("Digits") or "").strip()
    if digits.isdigit() and 1 <= int(digits) <= len(languages):
        return languages[int(digits) - 1]
    return _url_language(languages) or languages[0]


def _url_language(languages: list[str] | None = None) -> str | None:
    """The `lang` query parameter when it is one of ours (never trusted beyond that)."""
    value = request.args.get("lang", "")
    allowed = set(languages or []) | {str(code) for code in current_app.config.get("IVR_LANGUAGES") or []}
    allowed |= {code.split("_")[0] for code in current_app.config.get("LOCALES") or []}
    return value if value in allowed else None


@bp.post("/voice/twilio/recording")
def voice_recording() -> ResponseReturnValue:
    """<Record>'s action: the voicemail becomes a case (a placeholder until transcribed); the caller hears the code."""
    form, programme = verified(_call_programme)
    language = _url_language(menu_languages(programme)) or menu_languages(programme)[0]
    response = VoiceResponse()
    duration = str(form.get("RecordingDuration") or "").strip()
    if not form.get("RecordingSid") or duration == "0":
        with force_locale(_locale(_text_language(language))):
            _say(response, gettext("We did not receive a message. Goodbye."), language)
        response.hangup()
        return twiml(str(response))
    try:
        voicemail = parse_ivr_transcription(form, language_hint=language)
        result = submit(voicemail)
    except ChannelError as exc:
        return channel_error(exc)
    except (IntakeUnavailable, SQLAlchemyError):
        db.session.rollback()
        log.error("voice: intake unavailable")
        abort(503)
    spoken = ", ".join(" ".join(part) for part in result.case.reference.split("-"))
    with force_locale(_locale(_text_language(language))):
        text = gettext(
            "Thank you, we recorded your message. Your reference is %(reference)s. Again: %(reference)s. Goodbye.",
            reference=spoken,
        )
    _say(response, text, language)
    response.hangup()
    log.info("case %s: voicemail answered created=%s", result.case.reference, result.created)
    return twiml(str(response))


@bp.post("/voice/twilio/transcription")
def voice_transcription() -> ResponseReturnValue:
    """The transcribeCallback: the text becomes the case's (created now if the recording callback has not come)."""
    form, programme = verified(_call_programme)
    language = _url_language(menu_languages(programme))
    try:
        voicemail = parse_ivr_transcription(form, language_hint=language)
        result = submit(voicemail)
        if not result.created:
            conversations.complete_voicemail(result.case, voicemail)
    except ChannelError as exc:
        return channel_error(exc)
    except (IntakeUnavailable, SQLAlchemyError):
        db.session.rollback()
        log.error("voice transcription: intake unavailable")
        abort(503)
    log.info("case %s: transcription callback created=%s", result.case.reference, result.created)
    return "", 204
