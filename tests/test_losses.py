"""labelwise.losses against losses written out with torch.nn.functional, and class balancing against sklearn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from _factories import make_batch, make_task
from _references import reference_head_loss, reference_loss
from labelwise.errors import ConfigError, LabelError
from labelwise.losses import IMBALANCE_RATIO, infer_balance, loss_for
from labelwise.task import KIND_HEADS, HeadType, Task, TaskKind

OPTIONS = [
    pytest.param({}, id="plain"),
    pytest.param({"weighted": True}, id="weighted"),
    pytest.param({"label_smoothing": 0.1}, id="smoothed"),
    pytest.param({"weighted": True, "label_smoothing": 0.2}, id="weighted-smoothed"),
]


def _two_logit_batch() -> tuple[Task, torch.Tensor, torch.Tensor]:
    task, logits, targets = make_batch("binary")
    two = Task(kind=TaskKind.BINARY, classes=task.classes, head="two_logits")
    return two, torch.cat([torch.zeros_like(logits), logits], dim=1), targets.long()


def _loss_kwargs(task: Task, options: dict[str, object]) -> dict[str, object]:
    kwargs: dict[str, object] = {"label_smoothing": options.get("label_smoothing", 0.0)}
    if options.get("weighted"):
        if task.activation == "softmax":
            kwargs["class_weight"] = torch.linspace(0.5, 2.0, task.num_classes)
        else:
            kwargs["pos_weight"] = torch.linspace(0.5, 3.0, task.head_width)
    return kwargs


def _assert_matches_reference(
    task: Task, logits: torch.Tensor, targets: torch.Tensor, options: dict[str, object]
) -> None:
    kwargs = _loss_kwargs(task, options)
    ours = loss_for(task, **kwargs)(logits, targets)  # type: ignore[arg-type]
    # The same formula in float32, summed in a different order.
    torch.testing.assert_close(ours, reference_loss(task.kind, logits, targets, **kwargs), rtol=1e-6, atol=1e-7)  # type: ignore[arg-type]


@pytest.mark.parametrize("options", OPTIONS)
def test_loss_matches_torch(kind: TaskKind, options: dict[str, object]) -> None:
    _assert_matches_reference(*make_batch(kind, seed=1), options)


@pytest.mark.parametrize("options", OPTIONS)
def test_two_logit_binary_loss_matches_torch(options: dict[str, object]) -> None:
    _assert_matches_reference(*_two_logit_batch(), options)


def test_two_logits_are_the_same_model_as_one() -> None:
    one, logits, targets = make_batch("binary")
    two, both, long_targets = _two_logit_batch()
    torch.testing.assert_close(loss_for(two)(both, long_targets), loss_for(one)(logits, targets), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(two.probabilities(both), one.probabilities(logits), rtol=1e-6, atol=1e-7)


# Every head type, on each kind that allows it.
HEAD_CASES = [pytest.param(kind, head, id=f"{kind}-{head}") for kind, heads in KIND_HEADS.items() for head in heads]


@pytest.mark.parametrize(("kind", "head"), HEAD_CASES)
@pytest.mark.parametrize("options", OPTIONS)
def test_task_loss_of_every_head_matches_torch(kind: TaskKind, head: HeadType, options: dict[str, object]) -> None:
    """`task.loss()` (what the README tells users to call) against each head's loss written with torch.nn.functional."""
    base, _, targets = make_batch(kind, seed=3)
    task = base.with_head(head)
    logits = torch.randn(len(targets), task.head_width, generator=torch.Generator().manual_seed(4)) * 2
    targets = targets.to(task.target_dtype)
    kwargs = _loss_kwargs(task, options)
    expected = reference_head_loss(head, logits, targets, **kwargs)  # type: ignore[arg-type]
    # The same formula in float32, summed in a different order.
    torch.testing.assert_close(task.loss(**kwargs)(logits, targets), expected, rtol=1e-6, atol=1e-7)  # type: ignore[arg-type]


# -- what the loss says when it is misused ------------------------------------------------------------
def test_targets_of_the_other_dtype_are_explained(kind: TaskKind) -> None:
    task, logits, targets = make_batch(kind)
    wrong = targets.float() if task.target_dtype == torch.long else targets.long()
    match = (
        rf"{task.loss_name} for this {kind} Task needs {task.target_dtype} targets, got {wrong.dtype}. "
        r"Build targets with `task.encode\(labels\)`"
    )
    with pytest.raises(LabelError, match=match):
        loss_for(task)(logits, wrong)


def test_targets_of_the_wrong_shape_are_explained(kind: TaskKind) -> None:
    task, logits, targets = make_batch(kind)
    expected = r"\(64, 4\)" if kind is TaskKind.MULTILABEL else r"\(64,\)"
    with pytest.raises(
        LabelError, match=rf"targets of shape \(64, 1.*\) do not fit this {kind} Task: expected {expected}"
    ):
        loss_for(task)(logits, targets[:, None])


def test_multiclass_one_hot_targets_are_explained() -> None:
    task, logits, targets = make_batch("multiclass")
    one_hot = torch.nn.functional.one_hot(targets, 4).float()
    with pytest.raises(
        LabelError, match=r"targets of shape \(64, 4\) do not fit this multiclass Task: expected \(64,\)"
    ):
        loss_for(task)(logits, one_hot)


def test_a_head_of_the_wrong_width_is_explained(kind: TaskKind) -> None:
    task, _, targets = make_batch(kind)
    with pytest.raises(
        ConfigError,
        match=rf"logits of shape \(64, 3\), but .* needs \(N, {task.head_width}\). "
        r"Size the head with `task.head_width`",
    ):
        loss_for(task)(torch.zeros(64, 3), targets)


def test_weights_for_the_other_loss_are_explained() -> None:
    with pytest.raises(
        ConfigError, match=r"pos_weight applies to sigmoid losses; .*CrossEntropyLoss: pass class_weight"
    ):
        loss_for(make_task("multiclass"), pos_weight=torch.ones(4))
    with pytest.raises(
        ConfigError, match=r"class_weight applies to cross-entropy; .*BCEWithLogitsLoss: pass pos_weight"
    ):
        loss_for(make_task("multilabel"), class_weight=torch.ones(4))
    with pytest.raises(ConfigError, match=r"pos_weight has shape \(3,\); this multilabel Task needs \(4,\)"):
        loss_for(make_task("multilabel"), pos_weight=torch.ones(3))
    with pytest.raises(ConfigError, match=r"label_smoothing=1.0 must be in \[0, 1\)"):
        loss_for(make_task("binary"), label_smoothing=1.0)


# -- infer_balance ------------------------------------------------------------------------------------
def _imbalanced_targets(task: Task) -> torch.Tensor:
    """220 items: single-label counts 200/10/6/4 (first classes), multilabel positives 110/10/50/5."""
    if task.kind is TaskKind.MULTILABEL:
        targets = torch.zeros(220, 4)
        for j, positives in enumerate((110, 10, 50, 5)):
            targets[:positives, j] = 1.0
        return targets
    counts = (200, 10, 6, 4)[: task.num_classes - 1]
    counts = (*counts, 220 - sum(counts))
    return torch.repeat_interleave(torch.arange(task.num_classes), torch.tensor(counts)).to(task.target_dtype)


def test_balance_weights_follow_sklearn(kind: TaskKind) -> None:
    task = make_task(kind)
    targets = _imbalanced_targets(task)
    balance = infer_balance(targets, task)
    y = targets.long().numpy()
    if kind is TaskKind.MULTILABEL:
        ratio = (len(y) - y.sum(axis=0)) / y.sum(axis=0)
        expected = np.where(ratio >= IMBALANCE_RATIO, ratio, 1.0)
        assert balance.class_weight is None and balance.pos_weight is not None
        np.testing.assert_allclose(balance.pos_weight.numpy(), expected, rtol=1e-6)
        assert "for 2 labels rarer than 1:10 ('haze', 'water')" in balance.message
    elif kind is TaskKind.BINARY:  # one logit: pos_weight = negatives / positives
        assert balance.class_weight is None and balance.pos_weight is not None
        np.testing.assert_allclose(balance.pos_weight.numpy(), [(y == 0).sum() / (y == 1).sum()], rtol=1e-6)
    else:
        assert balance.pos_weight is None and balance.class_weight is not None
        expected = compute_class_weight("balanced", classes=np.arange(task.num_classes), y=y)
        np.testing.assert_allclose(balance.class_weight.numpy(), expected, rtol=1e-6)
    assert "imbalance" in balance.message or "rarer" in balance.message


def test_two_logit_binary_balance_uses_class_weights() -> None:
    task = Task(kind=TaskKind.BINARY, classes=("benign", "malignant"), head="two_logits")
    targets = _imbalanced_targets(task)
    balance = infer_balance(targets, task)
    assert balance.pos_weight is None and balance.class_weight is not None
    expected = compute_class_weight("balanced", classes=np.arange(2), y=targets.numpy())
    np.testing.assert_allclose(balance.class_weight.numpy(), expected, rtol=1e-6)
    assert balance.message.startswith("class imbalance 10.0:1; weighting the loss by inverse class frequency")


def test_mild_imbalance_gets_no_weights(kind: TaskKind) -> None:
    task, _, targets = make_batch(kind, n=200)
    balance = infer_balance(targets, task)
    assert balance.pos_weight is None and balance.class_weight is None
    assert "no loss weights" in balance.message


@pytest.mark.parametrize("options", OPTIONS)
def test_one_vs_rest_loss_is_bce_on_one_hot_targets(options: dict[str, object]) -> None:
    _, logits, targets = make_batch("multiclass", seed=2)
    task = Task(kind=TaskKind.MULTICLASS, classes=make_task("multiclass").classes, head="one_vs_rest")
    kwargs = _loss_kwargs(task, options)
    as_multilabel = torch.nn.functional.one_hot(targets, task.num_classes).float()
    expected = reference_loss(TaskKind.MULTILABEL, logits, as_multilabel, **kwargs)  # type: ignore[arg-type]
    torch.testing.assert_close(loss_for(task, **kwargs)(logits, targets), expected, rtol=1e-6, atol=1e-7)  # type: ignore[arg-type]


def test_one_vs_rest_balance_evens_out_the_classes_positives() -> None:
    task = Task(kind=TaskKind.MULTICLASS, classes=("a", "b", "c"), head="one_vs_rest")
    targets = torch.tensor([0] * 100 + [1] * 50 + [2] * 5)
    balance = infer_balance(targets, task)
    assert balance.class_weight is None and balance.pos_weight is not None
    torch.testing.assert_close(balance.pos_weight, torch.tensor([1.0, 2.0, 20.0]))
    assert infer_balance(torch.tensor([0, 1, 2] * 5), task).pos_weight is None
