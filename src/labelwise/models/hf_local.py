"""Pretrained Hugging Face text models, from local files only: which ``--model`` names one, where it lies, and
its tokenizer and config.

A name is a Hugging Face text model when it is given with ``pretrained`` and is neither one of our backbones nor a
timm name (`text_model_for`). It is found as a folder holding ``config.json`` (weights and tokenizer files beside
it, as ``save_pretrained`` writes them), or as a repository id in the Hugging Face hub cache (``$HF_HUB_CACHE``,
else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``, read when asked, not when imported). Nothing is ever
downloaded: a model that is not there is a `ConfigError` naming both places and how to fill them.

``transformers`` is imported inside the functions only: predicting with a table or image run never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.errors import ConfigError

__all__ = ["MAX_TOKENS", "LocalTokenizer", "find_model", "hub_cache", "load_config", "load_tokenizer", "quiet"]

MAX_TOKENS = 256  # tokens read per row (the model's own limit when lower): BERT-style models cost O(tokens^2)
# What the config says about HF's own classification head; labelwise puts its own `Network` head on the features.
_HEAD_KEYS = ("id2label", "label2id", "num_labels", "problem_type", "_name_or_path", "finetuning_task")


@dataclass(frozen=True)
class LocalTokenizer:
    """A model's fast tokenizer as JSON (``tokenizer.json``), with what reading rows needs beside it.

    Args:
        json: the serialized ``tokenizers.Tokenizer`` (normalizer, vocabulary, special-token template).
        sep_token: the separator joining several text columns; ``"\\n"`` for a tokenizer without one.
        pad_id: the id written after a row's last token (the attention mask leaves it out).
        max_length: tokens kept per row, special tokens included.
    """

    json: str
    sep_token: str
    pad_id: int
    max_length: int


def hub_cache() -> Path:
    """The Hugging Face hub cache as the environment names it now (``huggingface_hub`` reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def find_model(name: str) -> Path:
    """The local folder of the Hugging Face model ``name``: the folder itself, or its snapshot in the hub cache.

    Raises:
        ConfigError: neither holds its ``config.json`` (one line: where labelwise looked, how to put it there).
    """
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        return folder
    cache = hub_cache()
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(name, "config.json", cache_dir=cache)
    except ValueError:  # not a repository id (a path that does not exist, "a/b/c"): only the folder was possible
        hit = None
    if isinstance(hit, str):
        return Path(hit).parent
    raise ConfigError(
        f"the Hugging Face model {name!r} is not on this machine, and labelwise never downloads: it looked for a "
        f"folder {str(folder)!r} holding config.json and for {name!r} in the Hugging Face cache {str(cache)!r}. Run "
        f"`huggingface-cli download {name}` on a machine with internet and copy its cache (~/.cache/huggingface/hub) "
        "to this one (or point HF_HOME / HF_HUB_CACHE at it), or pass --model a folder written by save_pretrained."
    )


def load_config(name: str) -> dict[str, Any]:
    """The model's config (``config.to_dict()``) without HF's classification-head entries, JSON-ready.

    Raises:
        ConfigError: the model is not local, is not a transformers model, or needs code of its own to run.
    """
    folder = find_model(name)
    from transformers import AutoConfig

    try:
        with quiet():
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(
            f"{str(folder / 'config.json')!r} is not the config of a transformers model ({_first_line(err)}); pass "
            "--model the id or folder of a Hugging Face text model such as distilbert-base-uncased."
        ) from None
    data = config.to_dict()
    if data.get("is_encoder_decoder"):
        raise ConfigError(
            f"{name!r} is an encoder-decoder model ({data.get('model_type')}); labelwise reads text with an encoder "
            "only. Pass an encoder such as distilbert-base-uncased, bert-base-uncased or roberta-base."
        )
    return {key: value for key, value in data.items() if key not in _HEAD_KEYS}


def load_tokenizer(name: str, *, max_tokens: int = MAX_TOKENS) -> LocalTokenizer:
    """The model's own fast tokenizer, read from its local folder.

    Raises:
        ConfigError: the model is not local, or has no fast tokenizer (``tokenizer.json`` or files to build one).
    """
    folder = find_model(name)
    from transformers import AutoTokenizer

    try:
        with quiet():
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, use_fast=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"cannot read the tokenizer of {name!r} in {str(folder)!r} ({_first_line(err)}); expected the tokenizer "
            "files save_pretrained writes (tokenizer.json, tokenizer_config.json) beside config.json."
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"{name!r} has only a slow (Python) tokenizer; labelwise needs a fast one (tokenizer.json). Save it with "
            "`AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained(folder)`."
        )
    limit = int(tokenizer.model_max_length) if 0 < tokenizer.model_max_length < 1_000_000 else max_tokens
    return LocalTokenizer(
        json=tokenizer.backend_tokenizer.to_str(),
        sep_token=str(tokenizer.sep_token or "\n"),
        pad_id=int(tokenizer.pad_token_id or 0),
        max_length=min(max_tokens, limit),
    )


@contextmanager
def quiet() -> Iterator[None]:
    """transformers without its progress bars and its "weights not used" notices (HF's own heads, which labelwise
    never uses), restored afterwards."""
    from transformers.utils import logging as hf_logging

    logging: Any = hf_logging  # untyped
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
