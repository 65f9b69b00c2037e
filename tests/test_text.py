"""Free-text columns (issue 15): the TF-IDF encoder against scikit-learn, the solved linear model against
LogisticRegression, the three kinds end to end with a stated quality, and every downstream command on a text run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from fastapi.testclient import TestClient
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

import labelwise
from labelwise.cli import main
from labelwise.data._text_column import TextColumn, empty_texts
from labelwise.errors import ConfigError, DataError
from labelwise.estimator import LabelwiseClassifier
from labelwise.inputs.text import pack
from labelwise.losses import loss_for
from labelwise.models import create_network
from labelwise.models.head import ModelSpec
from labelwise.serve import create_app
from labelwise.task import Task
from labelwise.train import TrainConfig
from labelwise.train.batches import InMemoryDataset
from labelwise.train.solve import solve_linear

_FILLER = "the a of and to in is it you that was for on are with as this be at have from or one had by".split()
_TOPICS = {"sport": "match goal team coach", "money": "bank loan price market", "food": "bread cheese soup salad"}


def _texts(labels: list[list[str]], rng: np.random.Generator) -> list[str]:
    """A sentence of filler words per row, with one keyword of each of its topics (misspelt now and then)."""
    out = []
    for tags in labels:
        words = list(rng.choice(_FILLER, size=int(rng.integers(6, 14))))
        for tag in tags:
            word = str(rng.choice(_TOPICS[tag].split()))
            words.insert(int(rng.integers(0, len(words))), word if rng.random() > 0.2 else word[:-1] + "z")
        out.append(" ".join(words).capitalize() + ".")
    return out


def corpus(kind: str, n: int = 300, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    topics = list(_TOPICS)
    if kind == "binary":
        labels = [["money"] if rng.random() < 0.3 else ["food"] for _ in range(n)]
        names = ["spam" if tags == ["money"] else "ham" for tags in labels]
        return pd.DataFrame({"text": _texts(labels, rng), "label": names})
    if kind == "multiclass":
        labels = [[str(rng.choice(topics))] for _ in range(n)]
        return pd.DataFrame({"text": _texts(labels, rng), "label": [t[0] for t in labels]})
    labels = [[t for t in topics if rng.random() < 0.35] for _ in range(n)]
    return pd.DataFrame({"text": _texts(labels, rng), "label": ["|".join(t) for t in labels]})


# -- the encoder ---------------------------------------------------------------------------------------------
def test_vectors_are_scikit_learns_tfidf_of_words_and_characters() -> None:
    texts = corpus("multiclass", 80)["text"]
    column = TextColumn.fit(texts, "text")
    parts = [
        TfidfVectorizer(analyzer=analyzer, ngram_range=grams, sublinear_tf=True, min_df=2).fit_transform(texts)
        for analyzer, grams in (("word", (1, 2)), ("char_wb", (2, 5)))
    ]
    expected = normalize(sp.hstack(parts, format="csr"))  # each half has norm 1: the whole, sqrt(2)
    np.testing.assert_allclose(column.vectors(texts).toarray(), expected.toarray(), atol=1e-5)


def test_text_column_round_trips_through_json_and_reads_bad_cells() -> None:
    column = TextColumn.fit(corpus("binary", 60)["text"], "text", why="free text")
    again = TextColumn.from_dict(json.loads(json.dumps(column.to_dict())))
    assert again == column and "terms (word 1-2-grams, character 2-5-grams)" in column.why
    cells = pd.Series([None, "", b"caf\xe9 bread", "x" * 3_000_000, 42])  # missing, empty, bad UTF-8, 3 MB, a number
    vectors = again.vectors(cells)
    assert vectors.shape[0] == 5 and np.isfinite(vectors.data).all()
    assert vectors[0].nnz == vectors[1].nnz == 0 and vectors[2].nnz > 0
    assert empty_texts(cells).tolist() == [True, True, False, False, False]


def test_pack_keeps_the_largest_weights_of_a_long_row() -> None:
    row = sp.csr_matrix(np.array([[0.1, 0.0, 0.5, 0.3, 0.2]], dtype=np.float32))
    packed = pack(row, length=2)
    assert packed[0, 0].tolist() == [2.0, 3.0] and packed[0, 1].tolist() == pytest.approx([0.5, 0.3])


# -- the solved linear model ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_solved_model_is_scikit_learns_logistic_regression(kind: str) -> None:
    frame = corpus(kind, 240)
    column = TextColumn.fit(frame["text"], "text")
    x = column.vectors(frame["text"])
    classes = tuple(sorted(frame["label"].unique()))
    task = Task(kind=kind, classes=classes)
    targets = task.encode(frame["label"])
    packed = pack(x, length=int(np.diff(x.indptr).max()))
    spec = ModelSpec(backbone="textlinear", in_features=column.vocabulary_size, options={"width": task.head_width})
    strength = 1e-2
    data = InMemoryDataset(packed, targets)
    result = solve_linear(
        create_network(spec, task), task, train=data, valid=data, loss=loss_for(task),
        config=TrainConfig(weight_decay=strength),
    )  # fmt: skip
    reference = LogisticRegression(C=1 / (strength * len(frame)), tol=1e-10, max_iter=10_000).fit(x, frame["label"])
    logits = result.valid_outputs
    ours = torch.sigmoid(logits[:, 0]) if kind == "binary" else torch.softmax(logits, dim=1)
    theirs = reference.predict_proba(x)
    theirs = theirs[:, list(reference.classes_).index(task.positive)] if kind == "binary" else theirs
    np.testing.assert_allclose(ours.numpy(), theirs, atol=2e-3)


# -- the three kinds end to end ------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "metric", "bar"), [("binary", "f1", 0.95), ("multiclass", "accuracy", 0.9),
                                                     ("multilabel", "micro_f1", 0.9)])  # fmt: skip
def test_each_kind_learns_its_keywords_and_reloads_identically(
    kind: str, metric: str, bar: float, tmp_path: Path
) -> None:
    train, test = corpus(kind, 400), corpus(kind, 200, seed=1)
    options = {"task": "multilabel", "label_sep": "|"} if kind == "multilabel" else {}
    clf = labelwise.fit(train, target="label", out=tmp_path / "run", progress=False, **options)
    assert clf.model_spec.backbone == "textlinear" and clf.inputs.kinds["text"]["kind"] == "text"
    assert clf.evaluate(test, target="label")[metric] >= bar
    again = labelwise.load(tmp_path / "run")
    new = test.drop(columns="label")
    np.testing.assert_array_equal(again.predict_proba(new), clf.predict_proba(new))
    history = clf.info["training"]["history"]
    assert len(history) >= 3 and all("l2" in row for row in history)


def test_text_beside_numbers_uses_both() -> None:
    """The label is 'yes' for a money text or a large amount: the linear model of both columns beats the text alone
    and is within 0.02 of scikit-learn's best logistic regression on the same features (0.927 at C=10 or 100)."""
    rng = np.random.default_rng(0)
    frame = corpus("binary", 600)
    frame["amount"] = rng.normal(size=len(frame))
    frame["label"] = np.where((frame["label"] == "spam") | (frame["amount"] > 0.8), "yes", "no")
    train, test = frame.iloc[:450], frame.iloc[450:]
    both = labelwise.fit(train, target="label", progress=False).evaluate(test, target="label")["accuracy"]
    text = labelwise.fit(train.drop(columns="amount"), target="label", progress=False)
    assert both >= 0.89 and both >= text.evaluate(test, target="label")["accuracy"] + 0.05


def test_allow_none_and_conformal_sets_work_on_text() -> None:
    frame = corpus("multiclass", 400)
    clf = labelwise.fit(frame, target="label", conformal=0.9, allow_none="max_prob", progress=False)
    new = corpus("multiclass", 50, seed=2).drop(columns="label")
    out = clf.predictions_frame(labelwise.data.source_from_frame(new))
    assert {"set", "abstained"} <= set(out.columns)


# -- the column choice ---------------------------------------------------------------------------------------
def test_text_cols_forces_a_column_to_text_and_leaves_unnamed_text_out() -> None:
    frame = corpus("binary", 300).assign(notes=corpus("multiclass", 300, seed=3)["text"])
    frame["code"] = np.where(frame["label"] == "spam", "bank", "soup")  # one word per cell: a category by its values
    clf = labelwise.fit(frame, target="label", text_cols=["code", "text"], progress=False)
    kinds = clf.inputs.kinds
    assert kinds["code"]["kind"] == kinds["text"]["kind"] == "text"
    assert kinds["notes"]["kind"] == "text" and "left out: --text-cols names 'code', 'text'" in kinds["notes"]["why"]


def test_text_cols_bad_names_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "train.csv"
    corpus("binary", 100).to_csv(data, index=False)
    out = tmp_path / "run"
    assert main(["train", str(data), "--text-cols", "txt", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "text_cols names 'txt'" in err[0] and "Did you mean 'text'?" in err[0]
    assert not out.exists() and not list(tmp_path.glob("run*"))
    with pytest.raises(ConfigError, match="name each column in one of them"):
        labelwise.fit(corpus("binary", 50), target="label", text_cols=["text"], column_kinds={"text": "ignored"})


def test_a_streamed_table_with_text_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "train.parquet"
    corpus("binary", 100).to_parquet(data)
    with pytest.raises(DataError, match="free text, which labelwise reads from tables in memory only"):
        labelwise.fit(data, target="label", stream="on", progress=False)


# -- downstream commands -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("text")
    corpus("binary", 300).to_csv(root / "train.csv", index=False)
    assert main(["train", str(root / "train.csv"), "--out", str(root / "run"), "--quiet"]) == 0
    return root


def test_predict_names_empty_texts_and_refuses_a_missing_text_column(
    text_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = text_run / "new.csv"
    pd.DataFrame({"text": ["bank loan today", ""], "other": [1, 2]}).to_csv(new, index=False)
    out = text_run / "pred.csv"
    assert main(["predict", str(text_run / "run"), str(new), "--out", str(out)]) == 0
    assert "empty text cells, predicted without their text: 'text' in row 1" in capsys.readouterr().err
    assert pd.read_csv(out)["prediction"].tolist()[0] == "spam"
    pd.DataFrame({"body": ["bank"]}).to_csv(new, index=False)
    assert main(["predict", str(text_run / "run"), str(new), "--out", str(text_run / "none.csv")]) == 2
    assert "reads the text column(s) 'text', which the data given lacks" in capsys.readouterr().err
    assert not (text_run / "none.csv").exists()


def test_export_refuses_text_in_one_line(text_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(text_run / "run"), "--out", str(text_run / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ONNX has no operator for that split" in err[0]
    assert not (text_run / "m.onnx").exists()


def test_serve_answers_text_rows_as_predict_does(text_run: Path) -> None:
    clf = labelwise.load(text_run / "run")
    rows = [{"text": "cheap bank loan at a great price"}, {"text": "soup and bread"}]
    expected = clf.predict_proba(pd.DataFrame(rows))
    with TestClient(create_app(clf)) as client:
        body = client.post("/predict", json={"rows": rows}).json()
        assert [p["prediction"] for p in body["predictions"]] == ["spam", "ham"]
        np.testing.assert_allclose([p["p:spam"] for p in body["predictions"]], expected[:, 1], atol=1e-6)
        refused = client.post("/predict", json={"rows": [{"text": 12}]})
        assert refused.status_code == 400 and "text feature 'text' is 12" in refused.json()["error"]
        assert client.get("/metadata").json()["inputs"]["features"] == [{"name": "text", "type": "text"}]


def test_inspect_reports_text_statistics_and_near_copies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = corpus("binary", 200)
    frame.loc[150, "text"] = frame.loc[0, "text"].upper() + "!!"  # a near-copy of a training text
    frame["is_valid"] = frame.index >= 150
    frame.loc[1, "text"] = ""
    frame.to_csv(tmp_path / "d.csv", index=False)
    assert main(["inspect", str(tmp_path / "d.csv"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["text"]["text"]
    assert stats["empty"] == 1 and stats["shared_train_valid"] >= 1 and stats["vocabulary"] > 20
    assert main(["inspect", str(tmp_path / "d.csv")]) == 0
    shown = capsys.readouterr().out
    assert "repeat a training text up to case, spaces and punctuation" in shown and "1 of 200 cells are empty" in shown


# -- the estimator -------------------------------------------------------------------------------------------
def test_estimator_takes_a_list_of_strings_and_a_frame_with_text() -> None:
    train, test = corpus("multiclass", 300), corpus("multiclass", 100, seed=4)
    est = LabelwiseClassifier().fit(train["text"].tolist(), train["label"])
    assert est.classes_.tolist() == ["food", "money", "sport"] and est.score(test["text"].tolist(), test["label"]) > 0.9
    framed = LabelwiseClassifier().fit(train[["text"]].assign(n=1.0), train["label"])
    assert framed.predict_proba(test[["text"]].assign(n=1.0)).shape == (100, 3)
    with pytest.raises(ValueError, match="X lacks the column"):
        framed.predict(test[["text"]])


def test_a_blank_line_in_a_one_column_file_is_an_empty_text_not_a_lost_row(
    text_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = text_run / "blank.csv"
    new.write_text("text\nbank loan\n\n   \nsoup\n")
    out = text_run / "blank_pred.csv"
    assert main(["predict", str(text_run / "run"), str(new), "--out", str(out)]) == 0
    predicted = pd.read_csv(out)
    assert predicted["id"].tolist() == [0, 1, 2, 3] and predicted["prediction"].tolist()[::3] == ["spam", "ham"]
    assert "'text' in rows 1, 2" in capsys.readouterr().err


def test_inspect_warns_when_every_column_would_be_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pd.DataFrame({"word": [f"w{i}x" for i in range(60)], "label": ["a", "b"] * 30}).to_csv(
        tmp_path / "w.csv", index=False
    )
    assert main(["inspect", str(tmp_path / "w.csv")]) == 0
    assert "--text-cols word for a column of words" in capsys.readouterr().out


def test_the_report_shows_the_text_of_the_worst_predicted_items(text_run: Path) -> None:
    test = corpus("binary", 60, seed=5)
    test.to_csv(text_run / "test.csv", index=False)
    report = text_run / "report.html"
    assert main(["evaluate", str(text_run / "run"), str(text_run / "test.csv"), "--report", str(report)]) == 0
    page = report.read_text()
    worst = page[page.index('data-figure="worst"') :]
    assert "<th>text</th>" in worst and '<td class="text">' in worst
    assert any(text.replace("'", "&#x27;") in worst for text in test["text"])


def test_text_beside_an_image_column_goes_through_the_combiner(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    frame = corpus("binary", 120)
    (tmp_path / "img").mkdir()
    for i in range(len(frame)):
        pixels = (rng.random((16, 16)) * 255).astype(np.uint8)  # noise: the label is in the text alone
        Image.fromarray(pixels).save(tmp_path / "img" / f"{i}.png")
    frame["fname"] = [f"img/{i}.png" for i in range(len(frame))]
    frame.to_csv(tmp_path / "train.csv", index=False)
    clf = labelwise.fit(tmp_path / "train.csv", target="label", epochs=8, progress=False, out=tmp_path / "run")
    assert clf.model_spec.backbone == "concat" and list(clf.model_spec.options["parts"]) == ["text", "image"]
    assert clf.info["metrics"]["valid"]["accuracy"] >= 0.9
    again, new = labelwise.load(tmp_path / "run"), frame.head(5).assign(fname=lambda f: str(tmp_path) + "/" + f.fname)
    np.testing.assert_allclose(again.predict_proba(new), clf.predict_proba(new), atol=1e-6)


# -- the same solver on a table's features: --model linear ------------------------------------------------------
def test_linear_on_table_features_is_scikit_learns_logistic_regression() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 4, generator=gen)
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * torch.randn(300, generator=gen) > 0).float()
    task = Task(kind="binary", classes=(0, 1))
    spec = ModelSpec(backbone="linear", in_features=4, options={"width": 1})
    data, strength = InMemoryDataset(x, y), 1e-2
    result = solve_linear(
        create_network(spec, task), task, train=data, valid=data, loss=loss_for(task),
        config=TrainConfig(weight_decay=strength),
    )  # fmt: skip
    reference = LogisticRegression(C=1 / (strength * len(x)), tol=1e-10, max_iter=10_000).fit(x.numpy(), y.numpy())
    ours = torch.sigmoid(result.valid_outputs[:, 0]).numpy()
    np.testing.assert_allclose(ours, reference.predict_proba(x.numpy())[:, 1], atol=1e-3)


def test_model_linear_trains_a_table_and_reloads_identically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from labelwise.datasets import make_demo

    demo = make_demo("cancer", tmp_path, seed=0)
    out = tmp_path / "run"
    assert main(["train", str(demo.train), "--target", "diagnosis", "--model", "linear", "--out", str(out)]) == 0
    assert "solved (L-BFGS, full batch)" in capsys.readouterr().out
    clf = labelwise.load(out)
    assert clf.model_spec.backbone == "linear" and clf.evaluate(demo.test)["roc_auc"] >= 0.98
