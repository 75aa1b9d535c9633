"""Memory of the py3langid fallback (issue 9: worker RSS): the compact model, not py3langid's 142-language one."""

from __future__ import annotations

import textwrap

from classifier import language
from classifier.categories import LANGUAGES
from tests.classifier.memory_probe import run_probe

# py3langid's own model, restricted with set_languages(), kept ~68 MB (USS) after loading; the compact one ~14 MB.
MAX_FALLBACK_MB = 30

_SCRIPT = textwrap.dedent(
    """
    import numpy, py3langid.langid  # imported before measuring: only the model is measured
    from classifier import language

    language.detect("warm up pycld2 and the script rules with one sentence")
    settle()
    before = uss_mb()
    ident = language._identifier()
    ranked = [ident.rank(text)[0][0] for text in ("hello my friend, how are you", "Привет, как дела у тебя")]
    settle()
    print(json.dumps({"mb": uss_mb() - before, "ranked": ranked, "columns": ident.nb_ptc.shape[1]}))
    """
)


def test_fallback_identifier_keeps_only_the_compact_model() -> None:
    """Loading the py3langid fallback adds well under py3langid's own ~68 MB to a worker (measured in a new process)."""
    result = run_probe(_SCRIPT, timeout=120)
    assert result["ranked"] == ["en", "ru"]
    assert result["columns"] == sum(code != "ti" for code in LANGUAGES)  # py3langid has no Tigrinya
    assert result["mb"] < MAX_FALLBACK_MB, f"the fallback identifier added {result['mb']:.1f} MB"


def test_fallback_identifier_holds_no_full_model() -> None:
    """The identifier's only weights are our languages' columns (set_languages() kept all 142 for a reset)."""
    ident = language._identifier()
    assert ident is not None
    full_ptc, full_pc, full_classes = ident._full_model
    assert full_ptc is ident.nb_ptc
    assert full_pc is ident.nb_pc
    assert full_classes == ident.nb_classes == sorted(code for code in LANGUAGES if code != "ti")
