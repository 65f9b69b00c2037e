"""Task inference, encoding and the head/loss/activation contract, over every label spelling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _factories import make_task
from _references import reference_probabilities
from labelwise.errors import ConfigError, LabelError
from labelwise.task import HeadType, Task, TaskKind, infer_task, join_labels

# Expected kind -> the spellings that must infer it (torchmetrics-style ids name the spelling).
INFERENCE_TABLE = {
    TaskKind.BINARY: [
        pytest.param(["benign", "malignant", "benign"], id="strings"),
        pytest.param([0, 1, 1, 0], id="ints"),
        pytest.param([True, False, True], id="bools"),
        pytest.param(np.array([0.0, 1.0, 1.0]), id="integral-floats"),
        pytest.param(pd.Series(["no", "yes", "no"]), id="series"),
        pytest.param([["cat"], ["dog"], ["cat"]], id="singleton-lists"),
    ],
    TaskKind.MULTICLASS: [
        pytest.param(["bird", "cat", "dog"], id="strings"),
        pytest.param([3, 1, 2, 1], id="ints"),
        pytest.param(torch.tensor([0, 1, 2]), id="tensor"),
    ],
    TaskKind.MULTILABEL: [
        pytest.param(["cloud haze", "", "road"], id="delimited"),
        pytest.param(["cloud;haze", "road", "haze"], id="semicolon"),
        pytest.param([["cloud", "haze"], [], ["road"]], id="lists"),
        pytest.param([{"cloud"}, {"haze", "road"}], id="sets"),
        pytest.param(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]]), id="indicator"),
        pytest.param(pd.DataFrame({"cloud": [1, 0], "haze": [1, 1], "road": [0, 0]}), id="indicator-columns"),
        pytest.param([[1, 0, 1], [0, 0, 0]], id="indicator-rows"),
    ],
}
INFERENCE_CASES = [
    pytest.param(kind, *case.values, id=f"{kind}-{case.id}")
    for kind, cases in INFERENCE_TABLE.items()
    for case in cases
]


@pytest.mark.parametrize(("expected", "labels"), INFERENCE_CASES)
def test_infer_task_kind(expected: TaskKind, labels: object) -> None:
    task = infer_task(labels)
    assert task.kind is expected
    assert task.reason.startswith(str(expected))


def test_class_names_with_spaces_stay_whole_unless_their_words_recombine() -> None:
    # "b c" appears whole in every row that has it and neither word is ever a label alone: a class name with a
    # space (the new-user sweep's emoji categories, "Food & Drink", were split into tags such as '&').
    names = infer_task(["a", "b c", "b c"])
    assert names.kind is TaskKind.BINARY and set(names.classes) == {"a", "b c"}
    assert "'b c' are read as whole class names" in names.reason and "task='multilabel'" in names.reason
    emoji = ["Food & Drink", "Smileys & Emotion", "Flags", "Activities", "Food & Drink", "People & Body"]
    assert infer_task(emoji).kind is TaskKind.MULTICLASS
    assert infer_task(["a", "b c", "b c"], kind="multilabel").classes == ("a", "b", "c")
    # Tags recombine: a word of a several-word label also stands alone, or an empty row means "no tag".
    assert infer_task(["3 7", "7", "1 3", "5"]).kind is TaskKind.MULTILABEL
    assert infer_task(["cloud haze", "", "road"]).kind is TaskKind.MULTILABEL
    assert infer_task(["a b", "c d", "a c", "b d", "a d"]).kind is TaskKind.MULTILABEL  # 5 sets of 4 words


# Bad input -> a fragment of the message that must appear (what was found / expected / fix).
BAD_LABELS = [
    pytest.param(["a", "a", "a"], "one class ('a') in all 3 rows", id="single-class"),
    pytest.param(["a", None, "b"], "missing or empty labels in row 1", id="none"),
    pytest.param(["a", float("nan"), "b", "c"], "missing or empty labels in row 1", id="nan"),
    pytest.param(["a", "", "b"], "pass task='multilabel'", id="empty-string-single-label"),
    pytest.param([1, "a", 2], "mixes label types", id="mixed-types"),
    pytest.param([0.5, 1.5, 2.0], "non-integer numbers (0.5, 1.5)", id="floats"),
    pytest.param(["a b", "c;d"], "several possible separators", id="ambiguous-separator"),
    pytest.param(np.array([[1, 2], [0, 1]]), "only 0/1", id="indicator-values"),
    pytest.param(["", "", ""], "missing or empty labels", id="all-empty"),
    pytest.param([[], []], "no item has any label", id="all-empty-lists"),
    pytest.param("abc", "must be a sequence", id="scalar"),
]


@pytest.mark.parametrize(("labels", "fragment"), BAD_LABELS)
def test_bad_labels_raise_with_the_reason(labels: object, fragment: str) -> None:
    with pytest.raises(LabelError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        infer_task(labels)


def test_forced_kinds() -> None:
    assert infer_task(["a", "b", "a"], kind="multiclass").head_width == 2
    multilabel = infer_task(["a", "b", "c"], kind="multilabel")
    assert multilabel.kind is TaskKind.MULTILABEL and "asked for" in multilabel.reason
    with pytest.raises(ConfigError, match="exactly 2 classes"):
        infer_task(["a", "b", "c"], kind="binary")
    with pytest.raises(ConfigError, match="not one of"):
        infer_task(["a", "b"], kind="regression")


# (labels, expected positive class, the rule the Task's reason names): a positive name wins over rarity, in any case
# and spelling; two names or none leave it to the rarer class.
POSITIVE_TABLE = [
    pytest.param(["yes"] * 3 + ["no"], "yes", "'yes' reads as the positive name", id="yes-majority"),
    pytest.param(["Y", "N", "Y"], "Y", "'Y' reads as the positive name", id="Y-N"),
    pytest.param(["pos", "neg", "pos"], "pos", "'pos' reads as the positive name", id="pos-neg"),
    pytest.param(
        ["Positive", "Negative", "Positive"], "Positive", "'Positive' reads as the positive name", id="capitalised"
    ),
    pytest.param(["TRUE", "FALSE", "TRUE"], "TRUE", "'TRUE' reads as the positive name", id="TRUE-FALSE"),
    pytest.param(["t", "f", "t"], "t", "'t' reads as the positive name", id="t-f"),
    pytest.param(["on", "off", "on"], "on", "'on' reads as the positive name", id="on-off"),
    pytest.param(["1", "0", "1"], "1", "'1' reads as the positive name", id="text-1-0"),
    pytest.param(["1.0", "0.0", "1.0"], "1.0", "'1.0' reads as the positive name", id="text-1.0"),
    pytest.param(["+1", "-1", "+1"], "+1", "'+1' reads as the positive name", id="text-plus-1"),
    pytest.param([True, False, True], True, "True reads as the positive name", id="bools"),
    pytest.param([1, 0, 0, 1, 1], 1, "1 reads as the positive name", id="ints"),
    pytest.param([-1, 1, 1], 1, "1 reads as the positive name", id="ints-minus-1"),
    pytest.param([" yes ", "no", " yes "], " yes ", "' yes ' reads as the positive name", id="padded"),
    pytest.param(["b", "a", "a"], "b", "the rarer class, as neither class reads", id="neither"),
    pytest.param(["spam", "ham", "spam"], "ham", "the rarer class, as neither class reads", id="domain-word"),
    pytest.param(["1", "yes", "yes"], "1", "the rarer class, as both classes read as positive", id="both"),
]


@pytest.mark.parametrize(("labels", "positive", "rule"), POSITIVE_TABLE)
def test_default_positive_class(labels: list[object], positive: object, rule: str) -> None:
    task = infer_task(labels)
    assert task.positive == positive and type(task.positive) is type(positive)
    assert f"positive class {positive!r} ({rule}" in task.reason


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        pytest.param(["10.0", "9.0", "1.0", "9.0"], ("1.0", "9.0", "10.0"), id="numbers-as-text"),
        pytest.param(["010", "9", "1", "9"], ("1", "9", "010"), id="leading-zeros"),
        pytest.param(["10", "9", "b"], ("10", "9", "b"), id="not-all-numbers"),
        pytest.param(["nan", "10", "9"], ("10", "9", "nan"), id="nan-is-text"),
        pytest.param(["٣", "10", "9"], ("10", "9", "٣"), id="other-scripts-digits-are-text"),
    ],
)
def test_classes_written_as_numbers_sort_as_numbers(labels: list[str], classes: tuple[str, ...]) -> None:
    # Labels kept as written (a CSV's 1.0/2.0/10.0) still list in the order a person reads them.
    task = infer_task(labels)
    assert task.classes == classes and all(type(c) is str for c in task.classes)


def test_given_positive_class() -> None:
    assert infer_task(["x", "y", "y"], positive="y").classes == ("x", "y")
    assert infer_task(["yes", "no", "yes"], positive="no").positive == "no"  # a given class beats the names
    assert "(as given (--positive);" in infer_task(["yes", "no"], positive="no").reason
    assert infer_task([0, 1, 1], positive="0").positive == 0  # the CLI passes text
    assert infer_task([True, False, False], positive="False").positive is False
    with pytest.raises(
        ConfigError, match=r"positive='z' is not one of the classes \['x', 'y'\]; pass one of them, spelled as in"
    ):
        infer_task(["x", "y"], positive="z")
    with pytest.raises(ConfigError, match=r"positive='YES' is not one of the classes \['no', 'yes'\]"):
        infer_task(["yes", "no"], positive="YES")  # exact spelling: the class is written 'yes'


def test_head_activation_loss_and_dtype_table(kind: TaskKind) -> None:
    """The design's table, as one parametrized check."""
    expected = {
        TaskKind.BINARY: (1, "sigmoid", "BCEWithLogitsLoss", torch.float32),
        TaskKind.MULTICLASS: (4, "softmax", "CrossEntropyLoss", torch.long),
        TaskKind.MULTILABEL: (4, "sigmoid", "BCEWithLogitsLoss", torch.float32),
    }[kind]
    task = make_task(kind)
    assert (task.head_width, task.activation, task.loss_name, task.target_dtype) == expected


def test_encode_decode_round_trip(kind: TaskKind) -> None:
    labels = {
        TaskKind.BINARY: ["malignant", "benign", "malignant"],
        TaskKind.MULTICLASS: ["dog", "bird", "fish", "cat"],
        TaskKind.MULTILABEL: [("cloud", "road"), (), ("water",)],
    }[kind]
    task = make_task(kind)
    targets = task.encode(labels)
    assert targets.dtype == task.target_dtype
    decisions = targets.bool() if kind is TaskKind.MULTILABEL else targets.long()
    assert task.decode(decisions) == labels


def test_encode_rejects_unseen_labels_naming_rows() -> None:
    task = make_task("multiclass")
    with pytest.raises(LabelError, match=r"never trained on: 'cow', 'emu' in rows 1, 3"):
        task.encode(["cat", "cow", "dog", "emu"])
    with pytest.raises(LabelError, match="never trained on: 'snow' in row 1"):
        make_task("multilabel").encode(["cloud", "snow haze"])


def test_indicator_columns_are_aligned_by_name() -> None:
    task = infer_task(pd.DataFrame({"a": [1, 0], "b": [0, 1]}))
    swapped = pd.DataFrame({"b": [1, 0], "a": [0, 1]})
    assert task.encode(swapped).tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_binary_two_heads_are_the_same_model() -> None:
    """sigmoid(z1 - z0) == softmax(z)[1]: two logits add a parameter, not a capability (seed article 3)."""
    logits = torch.randn(100, 2, dtype=torch.float64)
    one = Task(kind="binary", classes=("n", "p")).probabilities((logits[:, 1] - logits[:, 0]).unsqueeze(1))
    two = Task(kind="binary", classes=("n", "p"), head="two_logits").probabilities(logits)
    torch.testing.assert_close(one, two, rtol=1e-12, atol=1e-12)  # exact identity up to float64 rounding


def test_probabilities_shape_and_rows(kind: TaskKind) -> None:
    task = make_task(kind)
    probs = task.probabilities(torch.randn(8, task.head_width) * 10)
    assert probs.shape == (8, task.num_classes)
    assert ((probs >= 0) & (probs <= 1)).all()
    if kind is not TaskKind.MULTILABEL:
        torch.testing.assert_close(probs.sum(dim=1), torch.ones(8))  # one label per item: rows sum to 1
    with pytest.raises(ConfigError, match=r"expected \(N, "):
        task.probabilities(torch.randn(8, task.head_width + 1))


def test_to_dict_round_trip(kind: TaskKind) -> None:
    task = make_task(kind)
    assert Task.from_dict(task.to_dict()) == task


def test_join_labels() -> None:
    assert join_labels([("a", "b"), (), None, 3], sep=" ") == ["a b", "", "", "3"]


_LABEL_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters=";,"),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.sets(_LABEL_TEXT, max_size=3), min_size=2, max_size=30), sep=st.sampled_from([" ", ";", ","]))
def test_delimited_round_trip_property(rows: list[set[str]], sep: str) -> None:
    """Any label sets written with any separator read back to the same sets."""
    if len({label for row in rows for label in row}) < 2:
        return
    strings = [sep.join(sorted(row)) for row in rows]
    task = infer_task(strings, kind="multilabel", label_sep=sep)
    decoded = task.decode(task.encode(strings).bool())
    assert [set(row) for row in decoded] == rows


@pytest.mark.parametrize("classes", [("n", "p"), ("a", "b", "c")], ids=["binary", "multiclass"])
def test_one_vs_rest_head_is_a_sigmoid_per_class_over_class_indices(classes: tuple[str, ...]) -> None:
    task = infer_task(list(classes) * 2, one_vs_rest=True)
    assert (task.head_width, task.activation, task.loss_name, task.target_dtype) == (
        len(classes),
        "sigmoid",
        "BCEWithLogitsLoss",
        torch.long,
    )
    assert "a sigmoid each" in task.reason and task.reason.startswith(str(task.kind))
    logits = torch.tensor([[2.0, -1.0, 0.5][: len(classes)], [-300.0] * len(classes)])
    sigmoids = torch.sigmoid(logits.double())
    expected = sigmoids / sigmoids.sum(dim=1, keepdim=True)
    expected[1] = 1 / len(classes)  # all sigmoids underflow: still a distribution, equal by symmetry
    torch.testing.assert_close(task.probabilities(logits).double(), expected, rtol=1e-6, atol=1e-7)
    assert task.bce_targets(task.encode([classes[-1]])).tolist() == [[0.0] * (len(classes) - 1) + [1.0]]
    assert Task.from_dict(task.to_dict()) == task


def test_one_vs_rest_conflicts_are_explained() -> None:
    with pytest.raises(ConfigError, match="already has one sigmoid per label.*Drop the option"):
        infer_task(["a b", "a", ""], one_vs_rest=True)
    with pytest.raises(ConfigError, match="binary_head='two'.*Pass one of them"):
        infer_task(["a", "b"], binary_head="two", one_vs_rest=True)
    with pytest.raises(ConfigError, match="softmax head.*Use `task.encode"):
        make_task("multiclass").bce_targets(torch.tensor([0, 1]))


# -- regressions found by tests/test_task_properties.py (issue 5) -------------------------------
# Each of these was a bare TypeError/ValueError from numpy, pandas or str.split, or a silently wrong Task.
MALFORMED_LABELS = [
    pytest.param(np.array(5), r"must be a sequence .* array of shape \(\)", id="0d-array"),
    pytest.param(np.zeros((2, 2, 2)), r"array of shape \(2, 2, 2\)", id="3d-array"),
    pytest.param(["a", {"b": 1}, "c"], "row 1 holds a 'dict' where one label", id="dict-label"),
    pytest.param([["a", ["b"]], ["c"]], "row 0 holds collections nested", id="nested-collection"),
    pytest.param([["a", None], ["b"], ["c", " "]], "rows 0, 2 hold a missing or empty label inside", id="none-in-list"),
    pytest.param([(pd.NA, 1), (0, 1)], "row 0 holds a missing or empty label inside", id="na-in-tuple-rows"),
    pytest.param([b"a", b"b"], "strings, integers or booleans, found bytes in rows 0, 1", id="bytes"),
    pytest.param([[1, "1"], ["b"]], r"mixes label types: number in row 0; str in rows 0, 1", id="mixed-in-lists"),
    pytest.param([[1.5, 2], [3]], r"non-integer numbers \(1.5\) in row 0", id="floats-in-lists"),
    pytest.param([" ", "a", "b"], "missing or empty labels in row 0", id="whitespace-only"),
]


@pytest.mark.parametrize(("labels", "fragment"), MALFORMED_LABELS)
def test_malformed_labels_are_label_errors_naming_rows(labels: object, fragment: str) -> None:
    with pytest.raises(LabelError, match=fragment):
        infer_task(labels)


def test_encode_refuses_malformed_labels_naming_rows() -> None:
    task = make_task("multiclass")
    with pytest.raises(LabelError, match="row 1 holds a 'dict'"):
        task.encode(["cat", {"dog": 1}])
    with pytest.raises(LabelError, match="row 0 holds several labels .* a multiclass Task takes exactly one"):
        task.encode([["cat", "dog"], ["bird"]])  # was: "missing or empty labels"
    with pytest.raises(LabelError, match=r"array of shape \(\)"):
        task.encode(np.array("cat"))  # was: read as the three labels 'c', 'a', 't'
    with pytest.raises(LabelError, match="row 0 holds collections nested"):
        make_task("multilabel").encode([["cloud", ["road"]]])


def test_forced_kinds_hold_for_collections_and_indicators() -> None:
    with pytest.raises(LabelError, match="row 0 holds several labels .* a binary Task"):
        infer_task([["a", "b"], ["a"], []], kind="binary")  # was: a multilabel Task, the forced kind ignored
    indicator = np.array([[0, 0, 1], [0, 1, 0], [0, 0, 1]])  # column 0 never occurs
    task = infer_task(indicator, kind="binary")
    assert task.decode(task.encode(indicator)) == [2, 1, 2]  # was: "indicator columns ... do not match"


def test_forced_multilabel_reads_strings_as_encode_does() -> None:
    task = infer_task(["a ", "b", "\u00a0a"], kind="multilabel")
    assert task.classes == ("a", "b")  # was: ('a ', 'b', '\xa0a'), which encode could not read back
    assert task.decode(task.encode(["a ", "b"]).bool()) == [("a",), ("b",)]


def test_label_sep_must_be_a_non_empty_string() -> None:
    with pytest.raises(ConfigError, match="label_sep=''; expected a non-empty string"):
        infer_task(["a b", "c"], label_sep="")  # was: ValueError: empty separator
    with pytest.raises(ConfigError, match="label_sep=1"):
        Task(kind="multilabel", classes=("a", "b"), label_sep=1)  # type: ignore[arg-type]


def test_multilabel_label_sep_is_one_no_class_holds() -> None:
    """Predictions are written joined by label_sep; "new york" joined by a space would read back as two labels."""
    labels = [["new york", "la"], ["la"], []]
    task = infer_task(labels)
    assert task.label_sep == ";"
    written = join_labels(task.decode(task.encode(labels).bool()), sep=task.label_sep)
    assert task.decode(task.encode(written).bool()) == [("la", "new york"), ("la",), ()]


def test_decode_refuses_what_is_not_a_decision() -> None:
    binary = infer_task(["no", "yes", "no"])
    assert binary.decode(binary.encode(["yes", "no"])) == ["yes", "no"]  # float 0/1 targets: was a TypeError
    assert binary.decode(np.array([1, -1])) == ["yes", None]
    with pytest.raises(ConfigError, match=r"rows 1, 2 are not decisions .* class indices 0..1, or -1"):
        binary.decode(torch.tensor([0, 2, -3]))  # was: IndexError / silently None
    with pytest.raises(ConfigError, match="row 0 are not decisions .* apply the thresholds first"):
        make_task("multilabel").decode(torch.tensor([[0.2, 0.9, 0.0, 1.0]]))  # probabilities: was every label
    with pytest.raises(ConfigError, match="decisions must be a tensor"):
        binary.decode(["yes"])  # type: ignore[arg-type]


DAMAGED_TASK_DICTS = [
    pytest.param({"classes": ["a", "b"]}, "needs 'kind'", id="no-kind"),
    pytest.param({"kind": "regression", "classes": ["a", "b"]}, "not one of binary", id="bad-kind"),
    pytest.param({"kind": "binary", "classes": "ab"}, "found classes='ab'", id="classes-string"),
    pytest.param({"kind": "binary", "classes": [["a"], ["b"]]}, "strings, integers or booleans", id="unhashable"),
    pytest.param({"kind": "binary", "classes": ["a", "b"], "positve": "a"}, "unknown Task fields 'positve'", id="typo"),
    pytest.param(["binary"], "stored as a JSON object", id="not-a-dict"),
]


@pytest.mark.parametrize(("data", "fragment"), DAMAGED_TASK_DICTS)
def test_from_dict_refuses_damaged_dicts(data: object, fragment: str) -> None:
    with pytest.raises(ConfigError if "strings" not in fragment else LabelError, match=fragment):
        Task.from_dict(data)  # type: ignore[arg-type]


def test_classes_are_json_ready() -> None:
    task = Task(kind=TaskKind.BINARY, classes=(np.int64(0), np.int64(1)))  # type: ignore[arg-type]
    assert [type(c) for c in task.classes] == [int, int]  # was: numpy ints that json.dumps refuses
    assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task


def test_pipe_separated_labels_are_multilabel() -> None:
    task = infer_task(["Action|Comedy", "Drama", ""])
    assert task.kind is TaskKind.MULTILABEL and task.classes == ("Action", "Comedy", "Drama")


# -- head types ----------------------------------------------------------------------------------
# What each head type is, written from the design (not read from labelwise's table): (one logit whatever the
# number of classes, activation, target dtype, loss).
HEAD_SPEC = {
    HeadType.ONE_LOGIT: (True, "sigmoid", torch.float32, "BCEWithLogitsLoss"),
    HeadType.TWO_LOGITS: (False, "softmax", torch.long, "CrossEntropyLoss"),
    HeadType.SOFTMAX: (False, "softmax", torch.long, "CrossEntropyLoss"),
    HeadType.ONE_VS_REST: (False, "sigmoid", torch.long, "BCEWithLogitsLoss"),
    HeadType.MULTILABEL: (False, "sigmoid", torch.float32, "BCEWithLogitsLoss"),
    HeadType.RANKED: (False, "softmax", torch.long, "CrossEntropyLoss"),
}
# Which head types each kind allows, the default first.
LEGAL_HEADS = {
    TaskKind.BINARY: ["one_logit", "two_logits", "one_vs_rest"],
    TaskKind.MULTICLASS: ["softmax", "one_vs_rest", "ranked"],
    TaskKind.MULTILABEL: ["multilabel"],
}
HEAD_CASES = [pytest.param(kind, head, id=f"{kind}-{head}") for kind, heads in LEGAL_HEADS.items() for head in heads]
ILLEGAL_CASES = [
    pytest.param(kind, head, id=f"{kind}-{head}")
    for kind in TaskKind
    for head in HeadType
    if head not in LEGAL_HEADS[kind]
]


def _task_with_head(kind: TaskKind, head: str) -> Task:
    return Task(kind=kind, classes=make_task(kind).classes, reason="why.", label_sep=";", head=head)


def test_every_head_type_is_allowed_somewhere() -> None:
    assert {head for heads in LEGAL_HEADS.values() for head in heads} == set(HeadType) == set(HEAD_SPEC)


@pytest.mark.parametrize(("kind", "head"), HEAD_CASES)
def test_head_type_sets_width_activation_targets_and_loss(kind: TaskKind, head: str) -> None:
    task = _task_with_head(kind, head)
    one_logit, activation, target_dtype, loss_name = HEAD_SPEC[HeadType(head)]
    assert task.head is HeadType(head)
    assert task.head_width == (1 if one_logit else task.num_classes)
    assert (task.activation, task.target_dtype, task.loss_name) == (activation, target_dtype, loss_name)
    assert task.encode(
        list(task.classes) if kind is not TaskKind.MULTILABEL else [[c] for c in task.classes]
    ).dtype == (target_dtype)


@pytest.mark.parametrize(("kind", "head"), HEAD_CASES)
def test_head_type_probabilities_match_their_definition(kind: TaskKind, head: str) -> None:
    task = _task_with_head(kind, head)
    logits = torch.randn(50, task.head_width, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4
    # float64 both sides; the formulas differ (softmax of logsigmoid vs sigmoid / sum, ...) by a few ulps.
    torch.testing.assert_close(
        task.probabilities(logits), reference_probabilities(head, logits), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize(("kind", "head"), HEAD_CASES)
def test_head_type_survives_json(kind: TaskKind, head: str) -> None:
    task = _task_with_head(kind, head)
    stored = json.loads(json.dumps(task.to_dict()))
    assert stored["head"] == head and "binary_head" not in stored and "one_vs_rest" not in stored
    assert Task.from_dict(stored) == task


# A Task as labelwise stored it before `head` existed (binary_head and one_vs_rest), and the head it reads as.
OLD_FORMAT = [
    pytest.param({"kind": "binary", "binary_head": "one", "one_vs_rest": False}, "one_logit", id="binary-one"),
    pytest.param({"kind": "binary", "binary_head": "two", "one_vs_rest": False}, "two_logits", id="binary-two"),
    pytest.param({"kind": "binary", "binary_head": "one", "one_vs_rest": True}, "one_vs_rest", id="binary-ovr"),
    pytest.param({"kind": "multiclass", "binary_head": "one", "one_vs_rest": False}, "softmax", id="multiclass"),
    pytest.param({"kind": "multiclass", "binary_head": "one", "one_vs_rest": True}, "one_vs_rest", id="multiclass-ovr"),
    # binary_head had no effect on a multiclass Task; it still has none.
    pytest.param({"kind": "multiclass", "binary_head": "two", "one_vs_rest": False}, "softmax", id="multiclass-two"),
    pytest.param({"kind": "multilabel", "binary_head": "one", "one_vs_rest": False}, "multilabel", id="multilabel"),
    pytest.param({"kind": "binary"}, "one_logit", id="neither-field"),
]


@pytest.mark.parametrize(("fields", "head"), OLD_FORMAT)
def test_old_binary_head_and_one_vs_rest_fields_still_load(fields: dict[str, object], head: str) -> None:
    kind = TaskKind(str(fields["kind"]))
    stored = {"classes": list(make_task(kind).classes), "reason": "why.", "label_sep": ";"} | fields
    task = Task.from_dict(stored)
    assert task == _task_with_head(kind, head)
    assert Task.from_dict(task.to_dict()) == task  # and is written back in the new format


OLD_FORMAT_REFUSED = [
    pytest.param(
        {"kind": "binary", "binary_head": "two", "one_vs_rest": True},
        r"one_vs_rest=True gives a binary Task one sigmoid logit per class; binary_head='two' asks for a softmax over "
        r"two logits instead. Pass one of them",
        id="two-and-one-vs-rest",
    ),
    pytest.param(
        {"kind": "multilabel", "binary_head": "one", "one_vs_rest": True},
        r"head='one_vs_rest' does not fit a multilabel Task; a multilabel Task takes head 'multilabel'",
        id="multilabel-one-vs-rest",
    ),
    pytest.param(
        {"kind": "binary", "binary_head": "three", "one_vs_rest": False},
        r"binary_head='three'; expected 'one' or 'two'",
        id="binary-head-three",
    ),
    pytest.param(
        {"kind": "binary", "head": "one_logit", "binary_head": "two"},
        r"unknown Task fields 'binary_head'.*expected some of kind, classes, reason, label_sep, head",
        id="both-formats",
    ),
]


@pytest.mark.parametrize(("fields", "match"), OLD_FORMAT_REFUSED)
def test_old_format_combinations_that_never_were_tasks_are_refused(fields: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Task.from_dict({"classes": ["a", "b"]} | fields)


@pytest.mark.parametrize(("kind", "head"), ILLEGAL_CASES)
def test_a_head_type_the_kind_does_not_allow_is_explained(kind: TaskKind, head: HeadType) -> None:
    allowed = " or ".join(f"'{h}'" for h in LEGAL_HEADS[kind])
    match = (
        rf"head='{head}' does not fit a {kind} Task; a {kind} Task takes head {allowed}\. "
        rf"Pass one of those, or leave head out for '{LEGAL_HEADS[kind][0]}'\."
    )
    with pytest.raises(ConfigError, match=match):
        _task_with_head(kind, head)
    with pytest.raises(ConfigError, match=match):
        _task_with_head(kind, LEGAL_HEADS[kind][0]).with_head(head)


def test_an_unknown_head_type_names_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"head='softmx' is not a head type; expected one of one_logit, .*ranked\. "):
        Task(kind="multiclass", classes=("a", "b", "c"), head="softmx")
    with pytest.raises(ConfigError, match=r"Did you mean 'softmax'\? Leave head out for the kind's default"):
        Task(kind="multiclass", classes=("a", "b", "c"), head="softmx")


def test_the_default_head_follows_the_kind(kind: TaskKind) -> None:
    assert make_task(kind).head == LEGAL_HEADS[kind][0]


def test_with_head_ranked_keeps_the_softmax_and_rewrites_the_head_sentence() -> None:
    task = infer_task(["bird", "cat", "dog", "cat"])
    ranked = task.with_head(HeadType.RANKED)
    assert (ranked.kind, ranked.classes, ranked.head) == (task.kind, task.classes, HeadType.RANKED)
    assert ranked.reason == (
        "multiclass: 3 classes, exactly one per item. 3 logits, softmax, CrossEntropyLoss with long class-index "
        "targets; the logits are computed in class chunks, never all at once."
    )
    logits = torch.randn(5, 3)
    torch.testing.assert_close(ranked.probabilities(logits), task.probabilities(logits), rtol=0, atol=0)
    assert task.head is HeadType.SOFTMAX  # frozen: with_head returns a new Task
