"""The ``"text"`` input group of a Hugging Face text model: every text column tokenized by the model's own fast
tokenizer (`TokenizedColumn`, `TokenizedGroup`), for the ``hf_text`` backbone (`labelwise.models.hf_text`).

A run reads its text columns this way when ``--model`` names a Hugging Face model with ``--pretrained``
(`labelwise.models.hf_text.text_model_for`); otherwise they are TF-IDF vectors (`labelwise.inputs.text`). The
tokenizer (``tokenizer.json``, a few hundred kB) is stored in each column's JSON, so a saved run tokenizes without
the Hugging Face cache; several text columns are joined by the tokenizer's separator token, in column order, and
cut at ``max_length`` tokens together.

A row is ``(2, L)`` int32: token ids, then the attention mask; rows are padded on the right to the longest row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from labelwise.data._text_column import TEXT, texts_of
from labelwise.data.sources import Source
from labelwise.errors import ConfigError
from labelwise.inputs.columns import GroupValues, Transform, register_column
from labelwise.inputs.text import text_frame
from labelwise.models.head import ModelSpec
from labelwise.models.hf_local import LocalTokenizer, load_config, load_tokenizer
from labelwise.models.hf_text import HF_TEXT

__all__ = ["TOKENIZED", "TextTokenizing", "TokenizedColumn", "TokenizedGroup", "tokenized_columns"]

TOKENIZED = "tokenized_text"  # the encoder's ``type`` in the stored inputs


@dataclass(frozen=True, kw_only=True)
class TokenizedColumn:
    """One text column read by a Hugging Face model's tokenizer.

    Args:
        name: the column.
        model: the Hugging Face model id or folder, as given.
        tokenizer: the tokenizer and how rows are cut and padded.
        why: how the column's kind was decided, and how its cells are cut.
    """

    group: ClassVar[str] = TEXT
    kind: ClassVar[str] = "text"
    name: str
    model: str
    tokenizer: LocalTokenizer
    why: str = ""

    @property
    def width(self) -> int:
        """Token positions the column writes (into the text group), at most: nonzero, so rows must hold it."""
        return self.tokenizer.max_length

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; `from_dict` inverts it."""
        t = self.tokenizer
        return {"type": TOKENIZED, "name": self.name, "model": self.model, "why": self.why, "tokenizer": t.json,
                "sep_token": t.sep_token, "pad_id": t.pad_id, "max_length": t.max_length}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizedColumn:
        """Inverse of `to_dict`."""
        tokenizer = LocalTokenizer(
            json=data["tokenizer"],
            sep_token=data["sep_token"],
            pad_id=int(data["pad_id"]),
            max_length=int(data["max_length"]),
        )
        return cls(name=data["name"], model=data["model"], tokenizer=tokenizer, why=data.get("why", ""))


@dataclass
class TextTokenizing:
    """Fits the text columns of a run as `TokenizedColumn` s of ``model`` (what `labelwise.data._fit_columns`
    calls for each text column); the tokenizer is read once, at the first text column.

    Raises:
        ConfigError: at the first text column, when ``model`` is not local or has no fast tokenizer.
    """

    model: str
    _loaded: list[LocalTokenizer] = field(default_factory=list, repr=False)

    def __call__(self, series: pd.Series, name: str, why: str) -> TokenizedColumn:
        if not self._loaded:
            self._loaded.append(load_tokenizer(self.model))
        tokenizer = self._loaded[0]
        lengths = np.array([len(e.ids) for e in _backend(tokenizer, truncate=False).encode_batch(texts_of(series))])
        longer = int((lengths > tokenizer.max_length).sum())
        cut = (
            f"; tokenized by the tokenizer of {self.model!r}, cut at {tokenizer.max_length} tokens ({longer} of "
            f"{len(lengths)} training cells were longer; several text columns are joined by {tokenizer.sep_token!r} "
            "and cut together)"
        )
        return TokenizedColumn(name=name, model=self.model, tokenizer=tokenizer, why=why + cut)


@dataclass(frozen=True)
class TokenizedGroup:
    """The ``"text"`` group of a Hugging Face model: the text columns joined, tokenized, ``(N, 2, L)`` int32."""

    columns: tuple[TokenizedColumn, ...]
    key: str = TEXT

    def __post_init__(self) -> None:
        if len({(c.model, c.tokenizer) for c in self.columns}) != 1:
            raise ConfigError(
                "the text columns were tokenized by different models "
                f"({sorted({c.model for c in self.columns})}); expected one model for all of them. Retrain the run."
            )

    @property
    def model(self) -> str:
        """The Hugging Face model id or folder, as given."""
        return self.columns[0].model

    @cached_property
    def _tokenizer(self) -> Any:
        return _backend(self.columns[0].tokenizer, truncate=True)

    def encode(self, source: Source, *, skip_bad: bool) -> GroupValues:
        """Tokenize every row's text columns; a source without them is refused by name."""
        frame = text_frame(source, [column.name for column in self.columns])
        settings = self.columns[0].tokenizer
        cells = [texts_of(frame[column.name]) for column in self.columns]
        texts = [f" {settings.sep_token} ".join(row) for row in zip(*cells, strict=True)]
        encodings = self._tokenizer.encode_batch(texts)
        length = max([1, *(len(e.ids) for e in encodings)])
        out = np.zeros((len(texts), 2, length), dtype=np.int32)
        out[:, 0] = settings.pad_id
        for i, encoding in enumerate(encodings):
            out[i, 0, : len(encoding.ids)] = encoding.ids
            out[i, 1, : len(encoding.ids)] = 1
        return GroupValues(torch.from_numpy(out), np.ones(len(texts), dtype=bool), [])

    def transform(self, *, train: bool) -> Transform | None:
        """Token ids are what the backbone reads (None: the batch passes unchanged)."""
        return None

    def model_spec(self, model: str, values: torch.Tensor, *, pretrained: bool) -> ModelSpec:
        """The ``hf_text`` backbone of the model that tokenized the columns, with its config (read locally)."""
        options = {"model": self.model, "config": load_config(self.model)}
        return ModelSpec(backbone=HF_TEXT, pretrained=pretrained, options=options)


def tokenized_columns(encoders: Sequence[Any]) -> tuple[TokenizedColumn, ...]:
    """The tokenized text columns among ``encoders``, in order."""
    return tuple(encoder for encoder in encoders if isinstance(encoder, TokenizedColumn))


def _backend(tokenizer: LocalTokenizer, *, truncate: bool) -> Any:
    """The ``tokenizers.Tokenizer`` of ``tokenizer`` (no padding: `TokenizedGroup.encode` pads the whole table)."""
    from tokenizers import Tokenizer  # deferred: installed with transformers, needed by text-model runs only

    backend = Tokenizer.from_str(tokenizer.json)
    backend.no_padding()
    if truncate:
        backend.enable_truncation(tokenizer.max_length)
    else:
        backend.no_truncation()
    return backend


register_column(TOKENIZED, TokenizedColumn)
