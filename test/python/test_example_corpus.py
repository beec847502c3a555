"""The semantic search example's corpus (examples/semantic_search/corpus.py).

Pure Python, no model: the sentences are the same on every run and every
Python version, every topic has its share, and each query names a topic.
The model's own checks run in test/py_ml_SUITE.erl.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "semantic_search" / "corpus.py"


def load_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_corpus", CORPUS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = load_corpus()


def test_same_sentences_every_time():
    first = corpus.labelled(3000)
    assert first == load_corpus().labelled(3000)
    assert corpus.documents(3000) == [text for _, text in first]
    # Fixed across runs and Python versions (no str hashing, one seeded
    # Random): the digest of the default corpus on 3.11, 3.12 and 3.13.
    digest = hashlib.sha256("\n".join(corpus.documents(3000)).encode()).hexdigest()
    assert digest == "969c04843040a36419289bac8f619221399198ec705c8daf2d5cc9280b9c1ed1"
    assert corpus.documents(100, seed=1) != corpus.documents(100, seed=2)


def test_topics_share_the_corpus_and_sentences_are_distinct():
    pairs = corpus.labelled(3000)
    assert len(pairs) == 3000
    assert len({text for _, text in pairs}) == 3000
    counts = Counter(topic for topic, _ in pairs)
    assert set(counts) == set(corpus.TOPICS)
    assert max(counts.values()) - min(counts.values()) <= 1
    # Interleaved: the first hundred hold every topic.
    assert {topic for topic, _ in pairs[:100]} == set(corpus.TOPICS)


def test_prefix_of_a_larger_corpus_is_balanced_too():
    counts = Counter(topic for topic, _ in corpus.labelled(160))
    assert sum(counts.values()) == 160
    assert set(counts) == set(corpus.TOPICS)


def test_queries_name_topics():
    assert len(corpus.QUERIES) == len(corpus.TOPICS)
    assert {topic for _, topic in corpus.QUERIES} == set(corpus.TOPICS)
    assert corpus.queries() == [query for query, _ in corpus.QUERIES]


def test_too_many_sentences_is_an_error():
    with pytest.raises(ValueError, match="at most 4000"):
        corpus.labelled(5000)
