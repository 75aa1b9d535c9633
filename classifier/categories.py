"""The stable category codes (shared/DESIGN.md); used by the classifier, routing, exports and tests."""

from typing import Final

GENERAL_CATEGORIES: Final[tuple[str, ...]] = (
    "information_request",
    "assistance_request",
    "service_complaint",
    "suggestion",
    "appreciation",
    "other",
)
RESTRICTED_CATEGORIES: Final[tuple[str, ...]] = (
    "sexual_exploitation_abuse",
    "fraud_corruption",
    "staff_misconduct",
    "safety_protection",
)
CATEGORIES: Final[tuple[str, ...]] = GENERAL_CATEGORIES + RESTRICTED_CATEGORIES

# Corpus and language-identification codes. "fa" covers Dari and Farsi; the web locale for Dari is fa_AF.
LANGUAGES: Final[tuple[str, ...]] = ("en", "fr", "es", "ar", "fa", "ps", "uk", "ru", "so", "sw", "am", "ti")


def is_restricted(category: str) -> bool:
    """True when the category belongs to the restricted queue."""
    return category in RESTRICTED_CATEGORIES
