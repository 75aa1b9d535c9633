"""Memory of the safety net (issue 9: worker RSS): the compiled lexicon after scanning the whole corpus."""

from __future__ import annotations

import json
import textwrap

import pytest

from classifier import safety_net
from classifier.data import CORPUS_DIR
from tests.classifier.memory_probe import run_probe

# Before issue 9 the lexicon added ~35 MB (USS) to this process after a corpus scan: ~14 MB of regex parse trees
# kept after start-up, ~8 MB of per-key alternations, thousands of copies of the same bit sets. Now ~8 MB.
MAX_LEXICON_MB = 16

_SCRIPT = textwrap.dedent(
    """
    from classifier import safety_net

    texts = [
        json.loads(line)["text"]
        for path in sorted((safety_net.LEXICON_DIR.parent / "data" / "corpus").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    settle()
    before = uss_mb()
    hits = sum(safety_net.scan(text) is not None for text in texts)
    settle()
    print(json.dumps({"mb": uss_mb() - before, "texts": len(texts), "hits": hits,
                      "parse_trees": safety_net._parse.cache_info().currsize}))
    """
)


def test_lexicon_memory_after_a_corpus_scan_stays_small() -> None:
    """Compiling the lexicon and scanning every corpus line adds under MAX_LEXICON_MB (measured in a new process)."""
    result = run_probe(_SCRIPT, timeout=300)
    assert result["texts"] > 5000
    assert result["hits"] > 1000
    assert result["parse_trees"] == 0
    assert result["mb"] < MAX_LEXICON_MB, f"the safety net added {result['mb']:.1f} MB"


def test_compiling_keeps_no_parse_trees() -> None:
    """The regex parse trees used to index the lexicon are not kept once it is compiled."""
    safety_net._compile(safety_net.load_entries())
    assert safety_net._parse.cache_info().currsize == 0


def test_prefilter_and_gate_values_are_shared() -> None:
    """Keys with the same members share one value object (thousands of bit sets of a few hundred bytes each)."""
    compiled = safety_net._compile(safety_net.load_entries())
    for automaton in (compiled.prefilter, compiled.gate):
        values = list(automaton.values())
        assert len({id(value) for value in values}) == len(set(values)) < len(values)


def _texts() -> list[str]:
    """Every corpus line, every lexicon term, and pairs of them run together."""
    texts = [
        json.loads(line)["text"]
        for path in sorted(CORPUS_DIR.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    texts += [entry.term for entry in safety_net.load_entries()]
    return texts + [a + " " + b for a, b in zip(texts[::7], texts[3::11], strict=False)]


def test_scan_results_equal_the_alternation_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """scan() and scan_all() give the same hits with one regex per entry as with the per-key alternations."""
    entries = safety_net.load_entries()
    fast = safety_net._compile(entries)
    reference = safety_net._compile(entries, prefilter=False)
    assert fast.matchers is not None and reference.matchers is None
    texts = _texts()
    monkeypatch.setitem(safety_net._CACHE, "default", reference)
    expected = [(safety_net.scan(text), safety_net.scan_all(text)) for text in texts]
    monkeypatch.setitem(safety_net._CACHE, "default", fast)
    got = [(safety_net.scan(text), safety_net.scan_all(text)) for text in texts]
    assert got == expected
    assert sum(hit is not None for hit, _ in got) > 2000
    assert not any(table.cache for table in (fast.words, fast.inside, *(t for _, _, t in fast.clitic_tables)))


def test_warm_all_patterns_compiles_each_entry_once_and_no_alternation(monkeypatch: pytest.MonkeyPatch) -> None:
    """warm(all_patterns=True) compiles every entry's own regex, not the per-key alternations."""
    compiled = safety_net._compile(safety_net.load_entries())
    monkeypatch.setitem(safety_net._CACHE, "default", compiled)
    safety_net.warm(all_patterns=True)
    assert compiled.matchers is not None
    assert all(pattern is not None for pattern in compiled.matchers._patterns)
    assert not compiled.words.cache and not compiled.inside.cache
