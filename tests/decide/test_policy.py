"""labelwise.decide.policy: the composed policy equals its parts, for every kind and every decision option."""

from __future__ import annotations

import json

import pytest
import torch

from _factories import make_batch
from labelwise.decide import DecideConfig, Policy, fit_policy, unknown_scores
from labelwise.decide.policy import top_k_sets
from labelwise.errors import ConfigError
from labelwise.task import Task, TaskKind

CONFIGS = [
    pytest.param("binary", {}, id="binary-default"),
    pytest.param("binary", {"metric": "fbeta:2"}, id="binary-fbeta"),
    pytest.param("binary", {"allow_none": "max_prob", "coverage": 0.9}, id="binary-abstain"),
    pytest.param("binary", {"conformal": 0.9}, id="binary-conformal"),
    pytest.param("multiclass", {}, id="multiclass-default"),
    pytest.param("multiclass", {"top_k": 2}, id="multiclass-top2"),
    pytest.param("multiclass", {"allow_none": "max_prob"}, id="multiclass-max-prob"),
    pytest.param("multiclass", {"allow_none": "energy", "selective_accuracy": 0.4}, id="multiclass-energy"),
    pytest.param("multiclass", {"conformal": 0.8}, id="multiclass-conformal"),
    pytest.param("one_vs_rest", {"allow_none": "one_vs_rest", "conformal": 0.9}, id="one-vs-rest"),
    pytest.param("multilabel", {"metric": "precision@recall:0.8"}, id="multilabel-constrained"),
    pytest.param("multilabel", {"conformal": 0.9}, id="multilabel-conformal"),
]


def _batch(name: str, *, seed: int) -> tuple[Task, torch.Tensor, torch.Tensor]:
    if name != "one_vs_rest":
        return make_batch(name, seed=seed, n=200)
    task, logits, targets = make_batch("multiclass", seed=seed, n=200)
    return Task(kind=task.kind, classes=task.classes, head="one_vs_rest"), logits, targets


@pytest.mark.parametrize(("name", "options"), CONFIGS)
def test_policy_decides_as_its_parts_and_survives_json(name: str, options: dict[str, object]) -> None:
    task, logits, targets = _batch(name, seed=0)
    # Logits that carry some signal, so thresholds and reject rules have something to find.
    signal = task.bce_targets(targets) if task.activation == "sigmoid" else torch.nn.functional.one_hot(targets)
    policy = fit_policy(logits + 2 * signal, targets, task, DecideConfig(**options))  # type: ignore[arg-type]
    _, new_logits, _ = _batch(name, seed=1)
    out = policy.decide(new_logits, task)
    probs = task.probabilities(new_logits)
    torch.testing.assert_close(out.probs, probs)
    undecided = policy.rule.decide(probs)
    if policy.abstention is None:
        assert out.unknown_score is None and not out.abstained.any()
        assert torch.equal(out.decisions, undecided)
    else:
        expected = policy.abstention.abstains(unknown_scores(new_logits, task, score=policy.abstention.score))
        assert torch.equal(out.abstained, expected) and out.abstained.any() and not out.abstained.all()
        assert torch.equal(out.decisions, torch.where(expected, -1, undecided))
    if policy.conformal is not None:
        assert out.sets is not None and torch.equal(out.sets, policy.conformal.sets(probs))
    elif policy.top_k is not None:
        assert out.sets is not None and torch.equal(out.sets, top_k_sets(probs, policy.top_k))
    else:
        assert out.sets is None
    loaded = Policy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert loaded == policy
    again = loaded.decide(new_logits, task)
    assert torch.equal(again.decisions, out.decisions) and torch.equal(again.abstained, out.abstained)
    assert len(policy.describe()) == 1 + sum(x is not None for x in (policy.abstention, policy.conformal, policy.top_k))


def test_the_reject_rule_is_fitted_on_the_tuned_decisions() -> None:
    """A coverage of 0.5 on validation leaves half the validation items answered, and the most confident half."""
    task, logits, targets = make_batch("multiclass", seed=3, n=400)
    policy = fit_policy(logits, targets, task, DecideConfig(allow_none="max_prob", coverage=0.5))
    out = policy.decide(logits, task)
    assert out.abstained.double().mean().item() == pytest.approx(0.5, abs=0.01)
    answered_confidence = out.probs.max(dim=1).values[~out.abstained]
    assert answered_confidence.min() >= out.probs.max(dim=1).values[out.abstained].max()


def test_top_k_sets_keep_class_order_on_ties() -> None:
    probs = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]])
    assert top_k_sets(probs, 2).tolist() == [[True, True, False, False], [False, False, True, True]]
    with pytest.raises(ConfigError, match=r"expected 1 <= k <= 4"):
        top_k_sets(probs, 5)


def test_with_top_k_replaces_the_set_rule_and_checks_the_task() -> None:
    task, logits, targets = make_batch("multiclass", n=100)
    policy = fit_policy(logits, targets, task, DecideConfig(conformal=0.9))
    swapped = policy.with_top_k(3, task)
    assert swapped.conformal is None and swapped.top_k == 3 and policy.with_top_k(None, task) is policy
    assert policy.with_top_k(4, task).top_k == 4  # every class: a valid set, as at training
    with pytest.raises(ConfigError, match=r"^--top-k 5 is not a number of classes to rank; .* from 1 to 4, the"):
        policy.with_top_k(5, task)
    with pytest.raises(ConfigError, match=r"^--top-k 0 is not a number of classes to rank; .* from 1 to 4, the"):
        policy.with_top_k(0, task)  # the class count is known here, so the message gives it


def test_a_policy_with_two_set_rules_is_refused() -> None:
    task, logits, targets = make_batch("multiclass", n=100)
    conformal = fit_policy(logits, targets, task, DecideConfig(conformal=0.9)).conformal
    with pytest.raises(ConfigError, match="top-k sets or conformal sets, not both"):
        Policy(rule=fit_policy(logits, targets, task, DecideConfig()).rule, conformal=conformal, top_k=2)


def test_from_dict_refuses_unknown_fields() -> None:
    task, logits, targets = make_batch("binary", n=100)
    data = fit_policy(logits, targets, task, DecideConfig()).to_dict() | {"abstain": None}
    with pytest.raises(
        ConfigError, match=r"unknown Policy fields 'abstain'; expected some of rule, abstention.*upgrade"
    ):
        Policy.from_dict(data)


def test_multilabel_never_abstains_its_none_is_an_empty_set() -> None:
    task, logits, targets = make_batch(TaskKind.MULTILABEL, n=100)
    out = fit_policy(logits, targets, task, DecideConfig()).decide(torch.full_like(logits, -50.0), task)
    assert not out.abstained.any() and not out.decisions.any()
