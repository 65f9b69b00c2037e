"""Check how a model, a loss and a batch fit together, for the classic classification mistakes, before training.

`check` runs the model once on a batch and reads what the loss receives: logits or already probabilities, an
output width that fits the classes, targets whose dtype, shape and values the loss expects, and a batch so
imbalanced that an unweighted loss is minimised by one class. Each `Finding` says what was found, why it is
wrong and the exact fix, one sentence each. `WiringCheck` runs it on the first batch of a Lightning fit.

Every rule in `RULES` reports errors, except: ``ce_one_hot_float_targets`` (legal class probabilities where
indices were meant; an error where the loss refuses them), ``class_absent`` and ``dominant_class`` are warnings;
``double_activation`` is a warning for log-softmax before cross-entropy (redundant: the loss is unchanged);
``probabilities_as_logits`` is a warning when only "all values in [0, 1]" points to it (an untrained head's
outputs can be small); ``binary_two_logits_bce`` is a warning when only one-hot (N, 2) targets say binary. For a
loss check does not know, shape and range findings are warnings: check cannot know what that loss expects.
"""

from typing import TYPE_CHECKING

from labelwise._lazy import lazy_exports
from labelwise.checking._check import check as check
from labelwise.checking._report import CheckReport as CheckReport
from labelwise.checking._report import Finding as Finding

if TYPE_CHECKING:
    from labelwise.checking._callback import WiringCheck as WiringCheck

RULES = (
    "forward_failed",
    "non_finite",
    "shape_mismatch",
    "binary_one_logit_ce",
    "binary_two_logits_bce",
    "width_mismatch",
    "label_out_of_range",
    "ce_float_targets",
    "ce_multi_hot_targets",
    "ce_one_hot_float_targets",
    "bce_long_targets",
    "nll_without_log_softmax",
    "bce_on_logits",
    "double_activation",
    "probabilities_as_logits",
    "dominant_class",
    "class_absent",
    "loss_error",
)

__all__ = ["RULES", "CheckReport", "Finding", "WiringCheck", "check"]

# WiringCheck imports Lightning, which `check` on a plain PyTorch model does not need.
__getattr__, __dir__ = lazy_exports(
    __name__, {"WiringCheck": "labelwise.checking._callback"}, defined=("RULES", "CheckReport", "Finding", "check")
)
