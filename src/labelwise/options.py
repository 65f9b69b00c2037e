"""Every option of `labelwise.fit`, spelled once: four frozen, keyword-only dataclasses.

- `DataConfig`: what to read and how to read the labels (target, image column, task kind, positive class, ...).
- `ModelConfig`: which network.
- `labelwise.train.TrainConfig`: how to train it.
- `labelwise.decide.DecideConfig`: how the trained model decides.

`FitOptions` holds one of each. `labelwise.fit(data, epochs=3, metric="mcc")`, the ``labelwise train`` flags
(``--epochs 3 --metric mcc``) and `LabelwiseClassifier(epochs=3, metric="mcc")` all route a keyword to the field of
the same name through `FitOptions.from_keywords`, so an option exists in one place and means the same everywhere
(a test checks that every field has its flag and its estimator parameter).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Literal

from labelwise.decide.config import DecideConfig
from labelwise.errors import ConfigError, check_fields
from labelwise.train.config import TrainConfig

__all__ = ["DataConfig", "FitOptions", "ModelConfig", "StreamOption", "option_default", "option_fields"]

StreamOption = Literal["auto", "on", "off"]
_TASK_KINDS = ("auto", "binary", "multiclass", "multilabel")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """What to read, and how to read its labels.

    Args:
        target: the label column, or several 0/1 columns (multilabel); None: a column named ``label``,
            ``labels``, ``target``, ``class`` or ``y``.
        image_col: column of image paths (relative to the table's folder); None: detected.
        task: ``auto`` (from the labels) or ``binary`` / ``multiclass`` / ``multilabel`` to override.
        label_sep: separator of multilabel label strings; None: detected.
        positive: positive class of a binary task; None: the one class named like a positive (``True``, ``1``,
            ``yes``, ``Y``, ``pos``... in any case), else the rarer class.
        binary_head: ``one`` logit with sigmoid and BCE, or ``two`` logits with softmax and cross-entropy.
        stream: read a Parquet file or folder in record batches (`labelwise.data.streaming`): ``auto`` when its
            uncompressed size exceeds a quarter of the available memory, ``on``, or ``off``.
        skip_bad_images: skip unreadable images (counted in the run) instead of stopping.
        column_kinds: feature column -> kind (``numeric``, ``categorical``, ``boolean``, ``datetime``,
            ``identifier``, ``text``, ``ignored``) for columns not to be read as their values suggest
            (`labelwise.data.column_kinds`); ``{"zip": "categorical", "notes": "ignored"}`` or ``["zip=categorical"]``.
        text_cols: the columns to read as free text, and no others: a column not named here that reads as text is
            left out, with that reason. None: each column's values decide.
    """

    target: str | tuple[str, ...] | None = None
    image_col: str | None = None
    task: str = "auto"
    label_sep: str | None = None
    positive: Any = None
    binary_head: Literal["one", "two"] = "one"
    stream: StreamOption = "auto"
    skip_bad_images: bool = False
    column_kinds: Mapping[str, str] = field(default_factory=dict)
    text_cols: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        from labelwise.data.column_kinds import parse_column_kinds, parse_text_cols  # deferred: pandas (CLI help)

        object.__setattr__(self, "column_kinds", parse_column_kinds(self.column_kinds))
        object.__setattr__(self, "text_cols", parse_text_cols(self.text_cols, self.column_kinds))
        if isinstance(self.target, list):  # a list is what people pass; a tuple keeps the config hashable
            object.__setattr__(self, "target", tuple(self.target))
        if self.task not in _TASK_KINDS:
            close = difflib.get_close_matches(str(self.task), _TASK_KINDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"task={self.task!r} is not one of {', '.join(map(repr, _TASK_KINDS))}.{hint}")
        if self.binary_head not in ("one", "two"):
            raise ConfigError(f"binary_head={self.binary_head!r}; expected 'one' or 'two'.")
        if self.stream not in ("auto", "on", "off"):
            raise ConfigError(f"stream={self.stream!r}; expected 'auto', 'on' or 'off'.")
        if not isinstance(self.skip_bad_images, bool):
            raise ConfigError(f"skip_bad_images={self.skip_bad_images!r}; expected True or False.")

    @property
    def target_arg(self) -> str | list[str] | None:
        """``target`` as the readers take it (a list of several columns)."""
        return list(self.target) if isinstance(self.target, tuple) else self.target


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Which network reads the inputs.

    Args:
        model: ``auto`` (``mlp`` for tables, ``cnn`` for images), one of `labelwise.list_backbones()`, a timm
            name, or (with ``pretrained``, for text columns) a Hugging Face text model: an id in the local Hugging
            Face cache or a folder written by ``save_pretrained`` (`labelwise.models.hf_text`; extra ``text``).
        pretrained: start a timm model or a Hugging Face text model from pretrained weights found locally (Hugging
            Face or torch hub cache, or the model's folder); nothing is downloaded, and missing weights are a
            `ConfigError` saying where to put them.
        image_size: side length images are resized to; None: from the data, or the timm model's.
    """

    model: str = "auto"
    pretrained: bool = False
    image_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError(f"model={self.model!r}; expected 'auto', a name from list_backbones() or a timm name.")
        if not isinstance(self.pretrained, bool):
            raise ConfigError(f"pretrained={self.pretrained!r}; expected True or False.")
        size = self.image_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ConfigError(f"image_size={size!r}; expected a side length in pixels >= 1, or None (from the data).")


_GROUPS: dict[str, type[Any]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "decide": DecideConfig,
}


def option_fields() -> dict[str, str]:
    """Every option's name and the `FitOptions` group that holds it (``data``, ``model``, ``train``, ``decide``).

    Example:
        >>> option_fields()["epochs"], option_fields()["metric"]
        ('train', 'decide')
    """
    return {f.name: group for group, cls in _GROUPS.items() for f in fields(cls)}


def option_default(name: str) -> Any:
    """The default of the option ``name``, read from its field.

    Example:
        >>> option_default("metric"), option_default("loggers")
        ('f1', ('csv',))
    """
    for config in _GROUPS.values():
        for item in fields(config):
            if item.name == name:
                factory: Any = item.default_factory
                return item.default if factory is MISSING else factory()
    raise ConfigError(f"unknown option {name!r}; options: {', '.join(sorted(option_fields()))}.")


@dataclass(frozen=True, kw_only=True)
class FitOptions:
    """Everything `labelwise.fit` was asked for beyond the data, one config per concern."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decide: DecideConfig = field(default_factory=DecideConfig)

    @classmethod
    def from_keywords(cls, base: FitOptions | None = None, /, **keywords: Any) -> FitOptions:
        """Route each keyword to the config field of that name, on top of ``base``.

        Raises:
            ConfigError: a keyword that names no option (with the closest name), or a value out of range.

        Example:
            >>> FitOptions.from_keywords(epochs=3, metric="mcc").train.epochs
            3
            >>> FitOptions.from_keywords(epoch=3)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            labelwise.errors.ConfigError: unknown option 'epoch' (did you mean 'epochs'?). ...
        """
        known = option_fields()
        unknown = [key for key in keywords if key not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown option {unknown[0]!r}{hint}. Options: {', '.join(sorted(known))}; see `help(labelwise.fit)`."
            )
        base = base or cls()
        changes: dict[str, dict[str, Any]] = {group: {} for group in _GROUPS}
        for key, value in keywords.items():
            changes[known[key]][key] = value
        return cls(**{group: replace(getattr(base, group), **changes[group]) for group in _GROUPS})

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """A JSON-ready description, one mapping per group; `from_dict` inverts it."""
        return {group: asdict(getattr(self, group)) for group in _GROUPS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> FitOptions:
        """Rebuild what `to_dict` wrote; unknown groups or fields are errors."""
        check_fields(data, list(_GROUPS), what="FitOptions")
        built = {}
        for group, values in data.items():
            config_cls = _GROUPS[group]
            check_fields(values, [f.name for f in fields(config_cls)], what=config_cls.__name__)
            built[group] = config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        return cls(**built)
