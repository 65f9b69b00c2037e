"""The ``hf_text`` backbone: a pretrained Hugging Face encoder (``AutoModel``) whose pooled hidden states are the
features of labelwise's own `Network` head.

The encoder is HF's bare model, never ``AutoModelForSequenceClassification``: the head, its width and its loss come
from the Task like every other run's, so HF's ``num_labels`` / ``problem_type`` (which pick the loss from the label
dtype, transformers #7496 and #10232) never take part. Features are the mean of the last hidden states over the
attention mask (``pooling="cls"``: the first token's); ``num_features`` is the model's ``hidden_size``.

The `ModelSpec` holds the model's name and its whole config (``config.to_dict()``): training starts from the
local weights (`labelwise.models.hf_local`), while a saved run rebuilds the architecture from the config alone and
loads its own weights, without the Hugging Face cache. A config that needs code of its own (``auto_map``) is
refused: an artifact never runs code it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from labelwise.errors import ConfigError
from labelwise.models.hf_local import find_model, quiet
from labelwise.models.registry import is_registered, register_backbone

__all__ = ["HF_TEXT", "HFText", "hf_text", "text_model_for"]

HF_TEXT = "hf_text"
# The fine-tuning settings of BERT (Devlin et al. 2019: lr 2e-5 .. 5e-5, weight decay 0.01) and of HF's Trainer
# examples; the tabular default lr 3e-3 wipes out pretrained weights within the first epoch.
PREFERRED_LR = 3e-5
PREFERRED_WEIGHT_DECAY = 0.01


def text_model_for(model: str, *, pretrained: bool) -> str | None:
    """The Hugging Face model the text columns are read with: ``model`` when it is given with ``pretrained`` and
    is neither ``auto``, one of our backbones nor a timm name; else None (text is read as TF-IDF).

    Example:
        >>> text_model_for("distilbert-base-uncased", pretrained=True), text_model_for("resnet18", pretrained=True)
        ('distilbert-base-uncased', None)
    """
    if not pretrained or model == "auto" or is_registered(model):
        return None
    import timm  # deferred: training only

    return None if timm.is_model(model) else model


class HFText(nn.Module):
    """``(N, 2, L)`` token ids and attention mask (`labelwise.inputs.tokenized`) -> ``(N, hidden_size)`` features.

    Args:
        encoder: a transformers ``AutoModel`` (an encoder returning ``last_hidden_state``).
        pooling: ``"mean"`` over the attention mask, or ``"cls"`` (the first token).
    """

    preferred_lr = PREFERRED_LR
    preferred_weight_decay = PREFERRED_WEIGHT_DECAY
    fine_tunes = True  # a combiner around it trains at its lr (`labelwise.models.combiner`)

    def __init__(self, encoder: Any, *, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ConfigError(f"pooling={pooling!r}; expected 'mean' or 'cls'.")
        self.encoder = encoder
        self.pooling = pooling
        self.num_features = int(encoder.config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, hidden_size)`` of rows ``x: (N, 2, L)`` (ids, mask), padded on the right."""
        mask = x[:, 1]
        # Rows are padded to the longest row of the whole table; a batch of short texts needs only its own longest.
        length = max(1, int(mask.sum(dim=1).max()))
        ids, mask = x[:, 0, :length].long(), mask[:, :length].long()
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]  # type: ignore[no-any-return]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # type: ignore[no-any-return]


@register_backbone(HF_TEXT)
def hf_text(
    *,
    in_features: int | None,
    in_chans: int | None,
    pretrained: bool,
    model: str,
    config: Mapping[str, Any],
    pooling: str = "mean",
) -> HFText:
    """Build the encoder of ``model``: its local pretrained weights, or (``pretrained=False``, a saved run) the
    architecture of ``config`` with fresh weights.

    Raises:
        ConfigError: input sizes given, a config that needs remote code, or pretrained weights not found locally.
    """
    if in_features is not None or in_chans is not None:
        raise ConfigError(f"the {HF_TEXT!r} backbone reads token ids; it takes no in_features or in_chans.")
    if "auto_map" in config:
        raise ConfigError(
            f"the config of {model!r} names code of its own (auto_map), which labelwise never runs; pass a model "
            "whose architecture transformers ships."
        )
    from transformers import AutoConfig, AutoModel

    encoder: Any  # transformers is untyped
    with quiet():
        if pretrained:
            encoder = _pretrained(AutoModel, model)
        else:
            settings = {key: value for key, value in config.items() if key != "model_type"}
            encoder = AutoModel.from_config(AutoConfig.for_model(config["model_type"], **settings))  # type: ignore[no-untyped-call]
    # The pooler (dense + tanh on the first token) is HF's classification input, unused here: without it the
    # artifact is smaller and no parameter goes without a gradient (DDP refuses those).
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    # from_pretrained hands the model back in eval mode, and Lightning keeps each module's mode: without train()
    # the encoder's dropout would stay off while it is fine-tuned.
    return HFText(encoder.float().train(), pooling=pooling)


def _pretrained(auto_model: Any, model: str) -> nn.Module:
    folder = find_model(model)
    try:
        return auto_model.from_pretrained(folder, local_files_only=True)  # type: ignore[no-any-return]
    except (OSError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(
            f"cannot load the weights of {model!r} from {str(folder)!r} ({reason}); expected model.safetensors (or "
            f"pytorch_model.bin) beside config.json. Download it again with `huggingface-cli download {model}`."
        ) from None
