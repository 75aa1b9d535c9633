"""Classify a stored case and route it; fail closed when the model is missing or keeps failing."""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from cfm.extensions import db
from cfm.models import Case
from cfm.models.case import QUEUE_GENERAL
from cfm.services import routing
from classifier.predict import Model, Prediction, load_model

log = logging.getLogger(__name__)
_MISSING = object()


def get_model() -> Model | None:
    """The app's model, loaded once per process; None sends cases to manual triage."""
    cached = current_app.extensions.get("cfm_model", _MISSING)
    if cached is _MISSING:
        cached = load_model(model_path())
        current_app.extensions["cfm_model"] = cached
        settle()
    return cached


def settle() -> None:
    """Hand back to the operating system the memory that reading the artifact used (issue 9: worker memory).

    Loading frees more than the model keeps (decompressing the arrays, or the .skops fallback's pipeline); glibc
    keeps freed heap pages unless asked (malloc_trim). Elsewhere nothing happens.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows): nothing to hand back this way
        pass


def model_path() -> Path | None:
    """MODEL_PATH; else a model trained here (`cfm train`) in the instance folder; else None (the shipped one)."""
    configured = current_app.config.get("MODEL_PATH")
    if configured:
        return Path(configured)
    local = trained_model_path()
    return local if local.exists() else None


def trained_model_path() -> Path:
    """Where `cfm train` writes when MODEL_PATH is not set (the shipped model is never overwritten)."""
    return Path(current_app.instance_path) / "model.skops"


def classify_case(case_id: int) -> Case | None:
    """Classify and route one case; re-raises on failure until the retries are used, then fails closed."""
    case = db.session.get(Case, case_id)
    if case is None or case.classification_status == "done":
        return case
    case.classification_attempts += 1
    db.session.commit()
    try:
        model = get_model()
        if model is None:
            log.warning("case %s: no usable model, sent to manual triage", case.reference)
            return fail_closed(case)
        apply(case, model.predict_one(case.text))
        db.session.commit()
        log.info("case %s classified queue=%s", case.reference, case.queue)
        return case
    except Exception:
        db.session.rollback()
        log.exception("case %s: classification attempt %s failed", case.reference, case.classification_attempts)
        if case.classification_attempts >= current_app.config["CLASSIFY_RETRIES"]:
            return fail_closed(case)
        raise


def predict(text: str) -> tuple[Prediction | None, int]:
    """The model's prediction for a text about to be stored, and the attempts it took (None: fail closed).

    Intake classifies inline before its one commit (issue 9): nothing is acknowledged before the case is stored,
    and a classifier that fails CLASSIFY_RETRIES times, or no model, only sends the case to manual triage.
    """
    retries = max(1, int(current_app.config["CLASSIFY_RETRIES"]))
    for attempt in range(1, retries + 1):
        try:
            model = get_model()
            if model is None:
                log.warning("no usable model, the case goes to manual triage")
                return None, attempt
            return model.predict_one(text), attempt
        except Exception:
            # Never the text: the traceback names the error only.
            log.exception("classification attempt %s failed", attempt)
    return None, retries


def route_new(case: Case, prediction: Prediction | None, attempts: int) -> None:
    """Route a case not yet stored from predict()'s result; never raises, so the case is stored all the same.

    An error here leaves the case as intake built it: pending or restricted, sealed (fail closed).
    """
    case.classification_attempts = attempts
    if prediction is not None:
        try:
            apply(case, prediction)
            return
        except Exception:
            log.exception("case %s: prediction could not be applied; sent to manual triage", case.reference)
    try:
        route_unclassified(case)
    except Exception:
        log.exception("case %s: could not be routed; it stays out of the general queue", case.reference)


def apply(case: Case, prediction: Prediction) -> None:
    """Store a Prediction on the case and route it (apply_prediction)."""
    apply_prediction(
        case,
        category=prediction.category,
        confidence=prediction.confidence,
        restricted=prediction.restricted,
        reasons=list(prediction.restricted_reasons),
        top_terms=list(prediction.top_terms),
        model_version=prediction.model_version,
        safety_net_category=prediction.safety_net_category,
    )


def apply_prediction(
    case: Case,
    *,
    category: str,
    confidence: float,
    restricted: bool,
    reasons: list[str],
    top_terms: list[str],
    model_version: str,
    safety_net_category: str | None,
) -> None:
    """Store a prediction and route the case; the inline safety-net result is never undone."""
    safety = case.safety_net_category or safety_net_category
    decision = routing.route(
        case.programme,
        case.received_at,
        category=category,
        model_restricted=restricted,
        safety_net_category=safety,
        reporter_flagged=case.category_hint == routing.SERIOUS_HINT,
    )
    case.category = category
    case.predicted_category = category
    case.confidence = confidence
    case.category_source = "model"
    case.model_version = model_version
    case.top_terms = top_terms
    case.safety_net_category = safety
    case.restricted_reasons = sorted(
        set(reasons)
        | ({"safety_net"} if safety else set())
        | ({"reporter_flagged"} if case.category_hint == routing.SERIOUS_HINT else set())
    )
    case.queue = decision.queue
    case.priority = decision.priority
    case.due_at = decision.due_at
    case.classification_status = "done"
    sealed = decision.queue != QUEUE_GENERAL
    case.set_sealed(sealed)
    for message in case.messages:
        message.set_sealed(sealed)


def fail_closed(case: Case) -> Case:
    """No prediction: the case goes to the restricted queue for a focal point to triage (committed)."""
    try:
        route_unclassified(case)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        raise
    return case


def route_unclassified(case: Case) -> None:
    """Route a case without a prediction to the restricted queue (fail closed); the caller commits."""
    decision = routing.route(
        case.programme,
        case.received_at,
        category=None,
        model_restricted=None,
        safety_net_category=case.safety_net_category,
    )
    case.queue = decision.queue
    case.priority = decision.priority
    case.due_at = decision.due_at
    case.classification_status = "failed"
    case.restricted_reasons = sorted({"unclassified"} | ({"safety_net"} if case.safety_net_category else set()))
