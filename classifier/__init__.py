"""Multilingual feedback classifier: pure Python and scikit-learn, no Flask, no database."""

from classifier.categories import CATEGORIES, GENERAL_CATEGORIES, LANGUAGES, RESTRICTED_CATEGORIES

__all__ = ["CATEGORIES", "GENERAL_CATEGORIES", "LANGUAGES", "RESTRICTED_CATEGORIES"]
