"""`labelwise.checking.check`: every rule fires on a minimal bad wiring and stays silent on the correct ones."""

from __future__ import annotations

import functools
import json
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from labelwise.checking import RULES, CheckReport, Finding, WiringCheck, check
from labelwise.errors import ConfigError, PossibleMistakeWarning, TrainingError
from labelwise.losses import loss_for
from labelwise.task import Task
from labelwise.train import InMemoryDataset, LabelwiseModule
from labelwise.train.batches import make_loader

N, D = 32, 6
CE, BCE = nn.CrossEntropyLoss, nn.BCEWithLogitsLoss
BINARY = Task(kind="binary", classes=("benign", "malignant"))
BINARY_TWO = Task(kind="binary", classes=("benign", "malignant"), head="two_logits")
MULTICLASS = Task(kind="multiclass", classes=("bird", "cat", "dog", "fish"))
MULTILABEL = Task(kind="multilabel", classes=("cloud", "haze", "road", "water"))
ONE_VS_REST = Task(kind="multiclass", classes=("bird", "cat", "dog", "fish"), head="one_vs_rest")


# -- batches and models ----------------------------------------------------------------------------------------
def _x(n: int = N) -> torch.Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(0))


def _indices(n: int = N, k: int = 4) -> torch.Tensor:
    """Balanced class indices 0..k-1."""
    return torch.arange(n) % k


def _binary(n: int = N) -> torch.Tensor:
    """Balanced 0/1 floats, (n, 1)."""
    return (torch.arange(n) % 2).float().unsqueeze(1)


def _multi_hot(n: int = N) -> torch.Tensor:
    """(n, 4) 0/1 floats, the bits of i % 16: every label positive in half the rows, rows with 0 to 4 labels."""
    i = torch.arange(n).unsqueeze(1) % 16
    return ((i >> torch.arange(4)) & 1).float()


def _net(width: int, *tail: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D, width), *tail)


class _Lambda(nn.Module):
    """``forward`` = a function: for activations written in ``forward`` rather than as modules."""

    def __init__(self, width: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fc, self.fn = _net(width)[0], fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.fc(x))


class _SoftmaxWhenPredicting(nn.Module):
    """Logits in training, probabilities in eval mode: wired right for training."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = _net(4)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.fc(x)
        return logits if self.training else logits.softmax(1)


Case = tuple[Any, Any, tuple[Any, torch.Tensor], dict[str, Any]]


def _case(model: Any, loss: Any, targets: torch.Tensor, inputs: Any = None, **kwargs: Any) -> Case:
    return model, loss, (_x(len(targets)) if inputs is None else inputs, targets), kwargs


def _task_case(task: Task, labels: list[Any], **weights: torch.Tensor) -> Case:
    return _case(_net(task.head_width), loss_for(task, **weights), task.encode(labels))


_BINARY_LABELS = ["benign", "malignant"] * (N // 2)
_MULTICLASS_LABELS = [("bird", "cat", "dog", "fish")[i % 4] for i in range(N)]
_MULTILABEL_LABELS = [tuple(c for c, bit in zip(MULTILABEL.classes, row, strict=True) if bit) for row in _multi_hot()]

CORRECT: dict[str, Callable[[], Case]] = {
    "binary-1-logit-bce": lambda: _case(_net(1), BCE(), _binary()),
    "binary-1-logit-bce-squeezed": lambda: _case(_net(1, nn.Flatten(0)), BCE(), _binary()[:, 0]),
    "binary-2-logit-ce": lambda: _case(_net(2), CE(), _indices(k=2)),
    "multiclass-ce": lambda: _case(_net(4), CE(), _indices()),
    "multilabel-bce": lambda: _case(_net(4), BCE(), _multi_hot()),
    "functional-ce": lambda: _case(_net(4), F.cross_entropy, _indices()),
    "functional-bce": lambda: _case(_net(4), F.binary_cross_entropy_with_logits, _multi_hot()),
    "partial-ce-label-smoothing": lambda: _case(
        _net(4), functools.partial(F.cross_entropy, label_smoothing=0.1), _indices()
    ),
    "nll-after-log-softmax": lambda: _case(_net(4, nn.LogSoftmax(dim=1)), nn.NLLLoss(), _indices()),
    "bce-after-sigmoid": lambda: _case(_net(1, nn.Sigmoid()), nn.BCELoss(), _binary()),
    "ce-ignore-index": lambda: _case(_net(4), CE(), torch.where(torch.arange(N) % 8 == 7, -100, _indices())),
    "ce-soft-targets": lambda: _case(_net(4), CE(), F.one_hot(_indices(), 4).float() * 0.7 + 0.075),
    "ce-named-classes": lambda: _case(_net(4), CE(), _indices(), classes=MULTICLASS.classes),
    "bce-task-binary": lambda: _case(_net(1), BCE(), _binary(), task=BINARY),
    "ce-task-binary": lambda: _case(_net(2), CE(), _indices(k=2), task=BINARY),
    "weighted-imbalanced-ce": lambda: _case(
        _net(2), nn.CrossEntropyLoss(weight=torch.tensor([1.0, 15.0])), (torch.arange(N) == 0).long()
    ),
    "softmax-only-when-predicting": lambda: _case(_SoftmaxWhenPredicting(), CE(), _indices()),
    "taskloss-binary": lambda: _task_case(BINARY, _BINARY_LABELS),
    "taskloss-binary-pos-weight": lambda: _task_case(BINARY, _BINARY_LABELS, pos_weight=torch.tensor([3.0])),
    "taskloss-binary-two-logits": lambda: _task_case(BINARY_TWO, _BINARY_LABELS),
    "taskloss-multiclass": lambda: _task_case(MULTICLASS, _MULTICLASS_LABELS),
    "taskloss-multiclass-class-weight": lambda: _task_case(MULTICLASS, _MULTICLASS_LABELS, class_weight=torch.ones(4)),
    "taskloss-multilabel": lambda: _task_case(MULTILABEL, _MULTILABEL_LABELS),
    "taskloss-multilabel-pos-weight": lambda: _task_case(MULTILABEL, _MULTILABEL_LABELS, pos_weight=torch.ones(4)),
    "taskloss-one-vs-rest": lambda: _task_case(ONE_VS_REST, _MULTICLASS_LABELS),
}


@pytest.mark.parametrize("name", CORRECT)
def test_correct_wirings_report_nothing(name: str) -> None:
    model, loss, batch, kwargs = CORRECT[name]()
    report = check(model, loss, batch, **kwargs)
    assert report.findings == () and report.notes == () and report.ok, str(report)
    assert str(report).startswith("no problems found: ")


# -- every rule, triggered -------------------------------------------------------------------------------------
def _ce_on_manual_softmax() -> Case:
    return _case(_Lambda(4, lambda z: z.exp() / z.exp().sum(1, keepdim=True)), CE(), _indices())


def _rescaled() -> Case:  # values in [0, 1] without any activation op: min-max scaling
    return _case(_Lambda(4, lambda z: (z - z.min()) / (z.max() - z.min())), BCE(), _multi_hot())


def _conv_head() -> Case:  # the seed's model: a Conv2d head as wide as the image gives (N, 2, 1, 1)
    torch.manual_seed(0)
    return _case(nn.Conv2d(3, 2, kernel_size=8), CE(), _indices(8, k=2), inputs=torch.randn(8, 3, 8, 8))


def _raising_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("my loss refuses this batch")


def _with_nan() -> Case:
    x = _x()
    x[3, 0] = float("nan")
    return _case(_net(4), CE(), _indices(), inputs=x)


# (rule, severity, the wiring, a fragment the fix must hold)
TRIGGERED: list[Any] = [
    ("forward_failed", "error", lambda: _case(nn.Linear(5, 3), CE(), _indices(k=3)), "model(inputs)"),
    ("non_finite", "error", _with_nan, "torch.isfinite(inputs).all()"),
    ("shape_mismatch", "error", _conv_head, "`x.flatten(1)`"),
    ("shape_mismatch", "error", lambda: _case(_net(1), BCE(), _binary()[:, 0]), "`targets.unsqueeze(1)`"),
    ("shape_mismatch", "error", lambda: _case(_net(4), CE(), _indices().unsqueeze(1)), "`targets.squeeze(1)`"),
    ("shape_mismatch", "error", lambda: _case(_net(2, nn.Flatten(0)), CE(), _indices(k=2)), "not `x.view(-1)`"),
    (
        "shape_mismatch",
        "error",
        lambda: _case(_net(4), BCE(), _indices().float()),
        "F.one_hot(targets.long(), 4).float()",
    ),
    ("shape_mismatch", "warning", lambda: _case(_net(1), nn.MSELoss(), _binary()[:, 0]), "`targets.unsqueeze(1)`"),
    ("binary_one_logit_ce", "error", lambda: _case(_net(1), CE(), _indices(k=2)), "`nn.BCEWithLogitsLoss()`"),
    ("binary_two_logits_bce", "error", lambda: _case(_net(2), BCE(), _binary()[:, 0]), "output 1 value"),
    (
        "binary_two_logits_bce",
        "warning",
        lambda: _case(_net(2), BCE(), F.one_hot(_indices(k=2)).float()),
        "`targets.argmax(1)`",
    ),
    ("width_mismatch", "error", lambda: _case(_net(3), CE(), _indices(k=3), classes=4), "`model[0] = nn.Linear(6, 4)`"),
    (
        "width_mismatch",
        "error",
        lambda: _case(_net(3), loss_for(MULTICLASS), MULTICLASS.encode(_MULTICLASS_LABELS)),
        "`task.head_width`",
    ),
    ("width_mismatch", "error", lambda: _case(_net(3), BCE(), _multi_hot()), "output 4 values"),
    ("label_out_of_range", "error", lambda: _case(_net(3), CE(), _indices()), "output 4 values"),
    ("label_out_of_range", "error", lambda: _case(_net(4), CE(), _indices() + 1), "`targets - 1`"),
    ("label_out_of_range", "error", lambda: _case(_net(4), CE(), _indices() - 1), "`ignore_index=-1`"),
    ("label_out_of_range", "error", lambda: _case(_net(1), BCE(), _binary() + 1), "`(targets - 1).float()`"),
    (
        "label_out_of_range",
        "warning",
        lambda: _case(_net(3), lambda o, t: F.cross_entropy(o, t % 3), _indices()),
        "0..2",
    ),
    ("ce_float_targets", "error", lambda: _case(_net(4), CE(), _indices().float()), "`targets.long()`"),
    ("ce_multi_hot_targets", "error", lambda: _case(_net(4), CE(), _multi_hot()), "`nn.BCEWithLogitsLoss()`"),
    (
        "ce_multi_hot_targets",
        "error",
        lambda: _case(_net(4), loss_for(MULTICLASS), _multi_hot().long()),
        "`infer_task(labels)`",
    ),
    (
        "ce_one_hot_float_targets",
        "warning",
        lambda: _case(_net(4), CE(), F.one_hot(_indices()).float()),
        "`targets.argmax(1)`",
    ),
    ("ce_one_hot_float_targets", "error", lambda: _case(_net(4), CE(), F.one_hot(_indices())), "`targets.argmax(1)`"),
    ("bce_long_targets", "error", lambda: _case(_net(1), BCE(), _binary().long()), "`targets.float()`"),
    (
        "bce_long_targets",
        "error",
        lambda: _case(_net(4), loss_for(MULTILABEL), _multi_hot().long()),
        "`task.encode(labels)`",
    ),
    (
        "nll_without_log_softmax",
        "error",
        lambda: _case(_net(4), nn.NLLLoss(), _indices()),
        "Add `nn.LogSoftmax(dim=1)`",
    ),
    (
        "nll_without_log_softmax",
        "error",
        lambda: _case(_net(4, nn.Softmax(1)), nn.NLLLoss(), _indices()),
        "Replace the softmax",
    ),
    ("bce_on_logits", "error", lambda: _case(_net(1), nn.BCELoss(), _binary()), "`nn.BCEWithLogitsLoss()`"),
    (
        "double_activation",
        "error",
        lambda: _case(_net(4, nn.Softmax(dim=1)), CE(), _indices()),
        "Drop the `nn.Softmax` (`model[1]`) at the end of the model: CrossEntropyLoss applies log-softmax itself",
    ),
    (
        "double_activation",
        "error",
        lambda: _case(_net(1, nn.Sigmoid()), BCE(), _binary()),
        "BCEWithLogitsLoss applies the sigmoid itself",
    ),
    (
        "double_activation",
        "error",
        lambda: _case(_Lambda(4, lambda z: torch.softmax(z, 1)), CE(), _indices()),
        "Drop the `softmax` call at the end of `forward`",
    ),
    (
        "double_activation",
        "error",
        lambda: _case(_Lambda(4, lambda z: z.sigmoid().squeeze(1)), F.binary_cross_entropy_with_logits, _multi_hot()),
        "`sigmoid` call",
    ),
    (
        "double_activation",
        "error",
        lambda: _case(_net(4, nn.Sigmoid()), loss_for(MULTILABEL), _multi_hot()),
        "`task.probabilities(logits)`",
    ),
    ("double_activation", "warning", lambda: _case(_net(4, nn.LogSoftmax(dim=1)), CE(), _indices()), "`nn.NLLLoss()`"),
    ("probabilities_as_logits", "error", _ce_on_manual_softmax, "Return the raw scores"),
    ("probabilities_as_logits", "warning", _rescaled, "Return the raw scores"),
    (
        "dominant_class",
        "warning",
        lambda: _case(_net(1), BCE(), (torch.arange(N) > 1).float().unsqueeze(1)),
        "pos_weight",
    ),
    (
        "dominant_class",
        "warning",
        lambda: _case(_net(4), CE(), (torch.arange(N) < 2).long() * 3, classes=MULTICLASS.classes),
        "weight=counts.sum() / (4 * counts)",
    ),
    (
        "dominant_class",
        "warning",
        lambda: _case(
            _net(4), loss_for(MULTILABEL), torch.cat([_multi_hot()[:, :3], (torch.arange(N) == 0).float()[:, None]], 1)
        ),
        "infer_balance",
    ),
    (
        "class_absent",
        "warning",
        lambda: _case(_net(4), CE(), _indices(k=3), classes=MULTICLASS.classes),
        "WeightedRandomSampler",
    ),
    ("loss_error", "error", lambda: _case(_net(4), _raising_loss, _indices()), "`_raising_loss` documents"),
]


def _id(case: Any) -> str:
    return f"{case[0]}-{case[1]}"


def _one_sentence(text: str) -> bool:
    return text.endswith(".") and re.search(r"[.!?] [A-Z]", text) is None


@pytest.mark.parametrize(("rule", "severity", "make", "fix"), TRIGGERED, ids=[_id(c) for c in TRIGGERED])
def test_each_rule_fires_on_its_bad_wiring(rule: str, severity: str, make: Callable[[], Case], fix: str) -> None:
    model, loss, batch, kwargs = make()
    report = check(model, loss, batch, **kwargs)
    hits = [f for f in report.findings if f.rule == rule]
    assert hits, str(report)
    assert hits[0].severity == severity and fix in hits[0].fix, str(hits[0])
    for finding in report.findings:
        assert all(_one_sentence(part) for part in (finding.found, finding.why, finding.fix)), str(finding)
        assert "\n" not in str(finding)


def test_every_rule_has_a_trigger() -> None:
    assert {case[0] for case in TRIGGERED} == set(RULES)


def test_the_seed_model_gets_flatten_not_a_torch_traceback() -> None:
    # The conv head of the first seed article: one finding with the fix; torch's own error is explained by it.
    model, loss, batch, _ = _conv_head()
    report = check(model, loss, batch)
    assert [f.rule for f in report.findings] == ["shape_mismatch"]
    with pytest.raises(RuntimeError, match="spatial targets"):
        loss(model(batch[0]), batch[1])


def test_models_that_refuse_tracing_are_judged_by_their_values() -> None:
    class RefusesTracing(nn.Module):  # as a compiled model may: it fails under a torch function mode
        def __init__(self) -> None:
            super().__init__()
            self.fc = _net(4)[0]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if torch._C._is_torch_function_mode_enabled():
                raise RuntimeError("cannot run under a torch function mode")
            return torch.softmax(self.fc(x), 1)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch.jit.script` is deprecated", category=FutureWarning)
        scripted = torch.jit.script(_net(4, nn.Softmax(dim=1)))  # refuses Python hooks
    for model in (RefusesTracing(), scripted):
        report = check(model, CE(), (_x(), _indices()))
        assert [f.rule for f in report.findings] == ["probabilities_as_logits"], str(report)


def test_findings_name_classes_and_counts() -> None:
    targets = (torch.arange(N) > 1).float().unsqueeze(1)
    report = check(_net(1), BCE(), (_x(), targets), classes=("benign", "malignant"))
    (finding,) = report.findings
    assert finding.found == "Class 'malignant' makes up 30 of 32 items in this batch (94%)."
    out_of_range = check(_net(3), CE(), (_x(), _indices(k=5))).errors[0]
    assert out_of_range.found == "12 of 32 targets are outside the class range 0..2: 3, 4."


def test_small_batches_say_nothing_about_balance() -> None:
    targets = torch.ones(8, 1)
    assert check(_net(1), BCE(), (_x(8), targets)).findings == ()


def test_a_loss_it_does_not_know_is_noted() -> None:
    report = check(_net(4), lambda o, t: F.cross_entropy(o, t), (_x(), _indices()))
    assert report.ok and report.notes == ("`<lambda>` is not a loss check knows: it checked shapes and ranges only.",)
    assert "note: " in str(report)


def test_hugging_face_style_outputs() -> None:
    class Output:
        def __init__(self, logits: torch.Tensor) -> None:
            self.logits = logits

    report = check(lambda x: Output(_net(4)(x)), CE(), (_x(), _indices()))
    assert report.findings == ()
    with pytest.raises(ConfigError, match=r"returned a tuple, expected the tensor the loss receives.*model\(x\)\[0\]"):
        check(lambda x: (x, x), CE(), (_x(), _indices()))


@pytest.mark.parametrize(
    ("batch", "match"),
    [
        pytest.param({"x": 1, "y": 2}, r"batch is a dict, expected an \(inputs, targets\) pair", id="dict"),
        pytest.param((1, 2, 3), r"batch is a tuple of length 3, expected", id="triple"),
        pytest.param(
            (torch.zeros(2, D), [0, 1]),
            r"targets are a list, expected a torch.Tensor.*torch.as_tensor",
            id="list-targets",
        ),
    ],
)
def test_bad_batches(batch: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check(_net(2), CE(), batch)


def test_classes_and_task_are_one_or_the_other() -> None:
    with pytest.raises(ConfigError, match="pass classes= or task=, not both"):
        check(_net(2), CE(), (_x(), _indices(k=2)), classes=2, task=BINARY)
    with pytest.raises(ConfigError, match="pass classes= or a TaskLoss, whose Task, not both"):
        check(_net(4), loss_for(MULTICLASS), (_x(), _indices()), classes=4)
    with pytest.raises(ConfigError, match="a classifier needs at least two"):
        check(_net(2), CE(), (_x(), _indices(k=2)), classes=1)


def test_the_model_is_left_as_it_was() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 4))
    model.eval()
    model[1].train()  # a mixed state must come back as it was, module by module
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    expected_draw = torch.rand(3)
    torch.manual_seed(1)
    check(model, CE(), (_x(), _indices()))
    assert torch.equal(torch.rand(3), expected_draw)  # dropout drew from a forked generator
    assert [m.training for m in model] == [False, True, False, False]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # BatchNorm statistics included


# -- the report --------------------------------------------------------------------------------------------------
def test_report_lists_errors_then_warnings_and_raises() -> None:
    warning = Finding("dominant_class", "warning", "Found.", "Why.", "`fix()`.")
    error = Finding("bce_long_targets", "error", "Long targets.", "Why.", "`targets.float()`.")
    report = CheckReport((warning, error), checked="`nn.BCEWithLogitsLoss` on outputs (8, 1) float32")
    assert not report.ok and report.errors == (error,) and report.warnings == (warning,)
    assert str(report).splitlines() == [str(error), str(warning)]
    assert str(error) == "error [bce_long_targets]: Long targets. Why. Fix: `targets.float()`."
    with pytest.raises(
        TrainingError, match=r"check found 1 error\(s\) in `nn.BCEWithLogitsLoss`.*\n  error \[bce_long"
    ):
        report.raise_for_errors()
    assert json.loads(json.dumps(report.to_dict()))["findings"][1]["fix"] == "`targets.float()`."
    CheckReport((warning,), checked="x").raise_for_errors()  # warnings alone do not raise


# -- the claims the messages make, against torch itself ------------------------------------------------------------
def test_cross_entropy_on_one_logit_is_zero_and_learns_nothing() -> None:
    logits = torch.randn(8, 1, requires_grad=True)
    loss = F.cross_entropy(logits, torch.zeros(8, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None and not logits.grad.any()


def test_log_softmax_before_cross_entropy_changes_nothing() -> None:
    # Why double_activation is only a warning for log-softmax: the loss is the same.
    logits, targets = torch.randn(16, 5), torch.arange(16) % 5
    expected = F.cross_entropy(logits, targets)
    torch.testing.assert_close(F.cross_entropy(F.log_softmax(logits, 1), targets), expected)


def test_one_hot_float_targets_match_indices_only_without_weights() -> None:
    logits, targets = torch.randn(16, 4), torch.arange(16) % 4
    one_hot, weight = F.one_hot(targets, 4).float(), torch.tensor([1.0, 2.0, 3.0, 4.0])
    torch.testing.assert_close(F.cross_entropy(logits, one_hot), F.cross_entropy(logits, targets))
    weighted = F.cross_entropy(logits, one_hot, weight=weight), F.cross_entropy(logits, targets, weight=weight)
    assert not torch.allclose(*weighted)


def test_squashed_outputs_cap_what_the_loss_can_say() -> None:
    # Softmax outputs into CE: the best prediction is e/(e+C-1); sigmoid outputs into BCE-with-logits: 0.5..0.73.
    best = torch.tensor([[1.0, 0.0, 0.0]])
    assert math.exp(-F.cross_entropy(best, torch.tensor([0]))) == pytest.approx(math.e / (math.e + 2))
    assert torch.sigmoid(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([0.5, 0.7311], abs=1e-4)


def test_bce_with_logits_refuses_long_targets() -> None:
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        F.binary_cross_entropy_with_logits(torch.zeros(4, 1), torch.ones(4, 1, dtype=torch.long))


# -- the Lightning callback ----------------------------------------------------------------------------------------
class _Module(L.LightningModule):
    def __init__(self, network: nn.Module, criterion: nn.Module) -> None:
        super().__init__()
        self.network, self.criterion = network, criterion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.criterion(self(batch[0]), batch[1])  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(
    module: L.LightningModule, targets: torch.Tensor, callback: WiringCheck, tmp_path: Any, *, validate: bool = False
) -> None:
    loader = make_loader(InMemoryDataset(_x(len(targets)), targets), batch_size=16, shuffle=False, seed=0)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
        default_root_dir=tmp_path,
    )
    with warnings.catch_warnings():
        # Lightning 2.6's pytree helper against torch >= 2.10; as in labelwise.train.trainer.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
        trainer.fit(module, loader, loader if validate else None)


def test_wiring_check_warns_once_per_finding(tmp_path: Any) -> None:
    callback = WiringCheck()
    with pytest.warns(PossibleMistakeWarning, match=r"double_activation.*Drop the `nn.Sigmoid`") as caught:
        _fit(_Module(_net(1, nn.Sigmoid()), BCE()), _binary(), callback, tmp_path)
    assert callback.report is not None and [f.rule for f in callback.report.findings] == ["double_activation"]
    assert len([w for w in caught if issubclass(w.category, PossibleMistakeWarning)]) == 1  # first batch only


def test_wiring_check_can_fail(tmp_path: Any) -> None:
    with pytest.raises(TrainingError, match=r"error \[binary_one_logit_ce\]"):
        _fit(_Module(_net(1), CE()), _indices(k=2) * 0, WiringCheck(fail=True), tmp_path)


def test_wiring_check_is_silent_on_labelwise_own_module(tmp_path: Any) -> None:
    task = MULTICLASS
    module = LabelwiseModule(_net(4), loss_for(task), lr=0.01, weight_decay=0.0)
    callback = WiringCheck(fail=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PossibleMistakeWarning)
        _fit(module, task.encode(_MULTICLASS_LABELS), callback, tmp_path, validate=True)
    assert callback.report is not None and callback.report.findings == ()


def test_wiring_check_needs_a_loss(tmp_path: Any) -> None:
    class NoLoss(_Module):
        def __init__(self) -> None:
            super().__init__(_net(2), CE())
            del self.criterion
            self.objective = CE()

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            return self.objective(self(batch[0]), batch[1])  # type: ignore[no-any-return]

    with pytest.raises(ConfigError, match=r"no loss on NoLoss.*`self.criterion`.*WiringCheck\(loss_fn=\.\.\.\)"):
        _fit(NoLoss(), _indices(k=2), WiringCheck(), tmp_path)
    objective = CE()
    callback = WiringCheck(objective)
    _fit(_Module(_net(2), objective), _indices(k=2), callback, tmp_path)
    assert callback.report is not None and callback.report.ok
