"""The training corpus: loading, checksums, near-duplicate groups and the group-aware held-out split."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from scipy import sparse

from classifier.categories import CATEGORIES, LANGUAGES
from classifier.pipeline import normalise

log = logging.getLogger(__name__)

DATA_DIR: Final = Path(__file__).resolve().parent
CORPUS_DIR: Final = DATA_DIR / "corpus"
HELD_OUT_PERCENT: Final = 20
# Two texts of one language whose character 5-gram sets overlap this much are one group.
NEAR_DUPLICATE_JACCARD: Final = 0.8
SHINGLE: Final = 5
CHANNELS: Final = ("web", "sms", "whatsapp", "hotline", "survey")


@dataclass(frozen=True)
class Example:
    """One labelled text (a corpus line or an officer correction)."""

    text: str
    lang: str
    category: str
    channel: str = "web"
    source: str = "authored"
    scenario: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Example:
        """An Example from a corpus JSON object (raises ValueError when it is not one)."""
        text, lang, category = row.get("text"), row.get("lang"), row.get("category")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text missing")
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}")
        if lang not in LANGUAGES:
            raise ValueError(f"unknown lang {lang!r}")
        tags = row.get("tags") or ()
        if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
            raise ValueError("tags must be a list of strings")
        return cls(
            text=text,
            lang=lang,
            category=category,
            channel=str(row.get("channel") or "web"),
            source=str(row.get("source") or ""),
            scenario=str(row.get("scenario") or ""),
            tags=tuple(tags),
        )

    def to_dict(self) -> dict[str, Any]:
        """The corpus JSON object for this example (keys in corpus order)."""
        return {
            "text": self.text,
            "lang": self.lang,
            "category": self.category,
            "channel": self.channel,
            "source": self.source,
            "scenario": self.scenario,
            "tags": list(self.tags),
        }

    @property
    def variant(self) -> str:
        """native, translit or code_mixed."""
        if "translit" in self.tags:
            return "translit"
        if "code_mixed" in self.tags:
            return "code_mixed"
        return "native"


def corpus_files(corpus_dir: Path = CORPUS_DIR) -> list[Path]:
    """The corpus JSON-lines files, sorted by name."""
    return sorted(corpus_dir.glob("*.jsonl")) if corpus_dir.is_dir() else []


def corpus_sha256(corpus_dir: Path = CORPUS_DIR) -> str:
    """SHA-256 over the corpus files' names and bytes (what a trained model is checked against)."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        digest.update(path.name.encode("utf-8") + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def examples_sha256(examples: Iterable[Example]) -> str:
    """SHA-256 over examples given in code (for models trained on something other than the corpus files)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(example.to_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
    return digest.hexdigest()


def load_corpus(corpus_dir: Path = CORPUS_DIR) -> list[Example]:
    """Every valid line of every corpus file; invalid lines are logged (file and line number, never text)."""
    examples: list[Example] = []
    for path in corpus_files(corpus_dir):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("not an object")
                    examples.append(Example.from_dict(row))
                except ValueError as exc:
                    log.warning("%s:%d skipped: %s", path.name, number, exc)
    return examples


def _shingles(text: str) -> set[str]:
    """Character shingles of a normalised text (the text itself when short)."""
    if len(text) <= SHINGLE:
        return {text}
    return {text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1)}


class _UnionFind:
    """Disjoint sets over 0..n-1."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """Root of i (with path halving)."""
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        """Merge the sets of i and j."""
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def _base_key(example: Example) -> str:
    """The group key before near-duplicate merging: (lang, scenario), or the normalised text without scenario."""
    if example.scenario:
        return f"{example.lang}:{example.scenario}"
    return f"{example.lang}:text:{hashlib.sha256(normalise(example.text).encode('utf-8')).hexdigest()[:16]}"


def assign_groups(examples: Sequence[Example]) -> list[str]:
    """Group key per example: lines sharing (lang, scenario), equal normalised text or near-duplicates merge."""
    n = len(examples)
    keys = [_base_key(example) for example in examples]
    uf = _UnionFind(n)
    first_by_key: dict[str, int] = {}
    first_by_text: dict[str, int] = {}
    normalised = [normalise(example.text) for example in examples]
    for i, (key, text) in enumerate(zip(keys, normalised, strict=True)):
        uf.union(i, first_by_key.setdefault(key, i))
        uf.union(i, first_by_text.setdefault(text, i))
    by_lang: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        by_lang.setdefault(example.lang, []).append(i)
    for indices in by_lang.values():
        for i, j in _near_duplicate_pairs([normalised[k] for k in indices]):
            uf.union(indices[i], indices[j])
    root_key: dict[int, str] = {}
    for i in range(n):
        root = uf.find(i)
        if root not in root_key or keys[i] < root_key[root]:
            root_key[root] = keys[i]
    return [root_key[uf.find(i)] for i in range(n)]


def _near_duplicate_pairs(texts: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs whose shingle Jaccard similarity reaches NEAR_DUPLICATE_JACCARD."""
    if len(texts) < 2:
        return []
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, text in enumerate(texts):
        for shingle in _shingles(text):
            rows.append(i)
            cols.append(vocab.setdefault(shingle, len(vocab)))
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), len(vocab))
    )
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    overlap = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    union = sizes[overlap.row] + sizes[overlap.col] - overlap.data
    keep = overlap.data >= NEAR_DUPLICATE_JACCARD * union
    return list(zip(overlap.row[keep].tolist(), overlap.col[keep].tolist(), strict=True))


def is_held_out(group: str) -> bool:
    """Whether a group falls in the held-out split (a stable hash of its key)."""
    bucket = int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:8], "big") % 100
    return bucket < HELD_OUT_PERCENT


@dataclass(frozen=True)
class Split:
    """Training and held-out examples with their group keys."""

    train: list[Example]
    held_out: list[Example]
    train_groups: list[str]
    held_out_groups: list[str]


def split(examples: Sequence[Example]) -> Split:
    """The group-aware held-out split (about HELD_OUT_PERCENT % of groups; deterministic)."""
    groups = assign_groups(examples)
    train: list[Example] = []
    held: list[Example] = []
    train_groups: list[str] = []
    held_groups: list[str] = []
    for example, group in zip(examples, groups, strict=True):
        if is_held_out(group):
            held.append(example)
            held_groups.append(group)
        else:
            train.append(example)
            train_groups.append(group)
    return Split(train, held, train_groups, held_groups)


def load_split(corpus_dir: Path = CORPUS_DIR) -> Split:
    """The split of the corpus on disk."""
    return split(load_corpus(corpus_dir))
