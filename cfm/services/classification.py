"""Classify a stored case and route it; fail closed when the model is missing or keeps failing."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from cfm.extensions import db
from cfm.models import Case
from cfm.models.case import QUEUE_GENERAL
from cfm.services import routing
from classifier.predict import Model, load_model

log = logging.getLogger(__name__)
_MISSING = object()


def get_model() -> Model | None:
    """The app's model, loaded once per process; None sends cases to manual triage."""
    cached = current_app.extensions.get("cfm_model", _MISSING)
    if cached is _MISSING:
        cached = load_model(model_path())
        current_app.extensions["cfm_model"] = cached
    return cached


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
        prediction = model.predict_one(case.text)
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
        db.session.commit()
        log.info("case %s classified queue=%s", case.reference, case.queue)
        return case
    except Exception:
        db.session.rollback()
        log.exception("case %s: classification attempt %s failed", case.reference, case.classification_attempts)
        if case.classification_attempts >= current_app.config["CLASSIFY_RETRIES"]:
            return fail_closed(case)
        raise


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
    """No prediction: the case goes to the restricted queue for a focal point to triage."""
    try:
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
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        raise
    return case
