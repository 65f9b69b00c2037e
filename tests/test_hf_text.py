"""Text columns read by a pretrained Hugging Face model (``--model NAME --pretrained``), on a tiny BERT built here.

The model (2 layers, hidden size 32, a WordPiece vocabulary of 300 trained by `tokenizers` on the test corpus) is
saved with ``save_pretrained`` into a folder, or laid out as the hub cache lays out a download; nothing is
downloaded. Its weights are random, so it trains at lr 3e-3 (at 1e-3 it needs 12 epochs) rather than the 3e-5 a
pretrained model prefers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import labelwise
from labelwise.cli import main
from labelwise.errors import ConfigError
from labelwise.inputs import Inputs
from labelwise.models import create_network
from labelwise.models.hf_text import HFText, text_model_for
from labelwise.task import Task

pytest.importorskip("transformers")

_FILLER = (
    "the of and to in is it that was for on are with as they be at one have this from or had by hot word but what "
    "some we can out other were all there when up use your how said an each she which do their time if will way "
    "about many then them would write like so these her long make thing see him two has look more day could go come"
).split()
_KEYWORDS = ("alpha", "beta", "gamma")
_FAST = {"epochs": 8, "lr": 3e-3, "progress": False}  # random weights learn at a from-scratch lr


def _texts(rng: np.random.Generator, keywords: list[list[str]]) -> list[str]:
    rows = []
    for words in keywords:
        filler = list(rng.choice(_FILLER, size=int(rng.integers(5, 15))))
        for word in words:
            filler.insert(int(rng.integers(0, len(filler) + 1)), word)
        rows.append(" ".join(filler))
    return rows


def _frame(kind: str, n: int, *, seed: int) -> pd.DataFrame:
    """Texts whose label is which keywords they contain (multilabel: any of alpha, beta; some none)."""
    rng = np.random.default_rng(seed)
    if kind == "multilabel":
        tags = [[word for word in ("alpha", "beta") if rng.random() < 0.5] for _ in range(n)]
        return pd.DataFrame({"review": _texts(rng, tags), "label": [" ".join(t) for t in tags]})
    words = list(rng.choice(_KEYWORDS[: 2 if kind == "binary" else 3], size=n))
    return pd.DataFrame({"review": _texts(rng, [[w] for w in words]), "label": words})


def _save_tiny_bert(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    corpus = [*_frame("multiclass", 300, seed=99)["review"], *_KEYWORDS]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=300, special_tokens=special))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=48,
    )  # fmt: skip
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=48,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def binary_run(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[labelwise.Classifier, Path]:
    out = tmp_path_factory.mktemp("runs") / "binary"
    clf = labelwise.fit(_frame("binary", 300, seed=0), target="label", model=str(tiny_bert), pretrained=True,
                        out=out, **_FAST)  # fmt: skip
    return clf, out


def _accuracy(clf: labelwise.Classifier, test: pd.DataFrame) -> float:
    predicted = [" ".join(sorted(p)) if isinstance(p, tuple) else p for p in clf.predict(test)]
    truth = [" ".join(sorted(label.split())) for label in test["label"]]
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_each_task_learns_its_keywords_to_90_percent_on_held_out_rows(
    kind: str, tiny_bert: Path, binary_run: tuple[labelwise.Classifier, Path]
) -> None:
    if kind == "binary":
        clf = binary_run[0]
    else:
        clf = labelwise.fit(_frame(kind, 300, seed=0), target="label", model=str(tiny_bert), pretrained=True, **_FAST)
    assert clf.task.kind == kind
    assert clf.model_spec.backbone == "hf_text"
    assert _accuracy(clf, _frame(kind, 200, seed=1)) >= 0.9  # exact match of the label set for multilabel


def test_saved_run_predicts_the_same_probabilities_without_the_model(
    binary_run: tuple[labelwise.Classifier, Path], tiny_bert: Path, tmp_path: Path
) -> None:
    clf, out = binary_run
    test = _frame("binary", 64, seed=2)
    moved = tmp_path / "elsewhere"
    shutil.move(tiny_bert, moved)  # the run must not need the model's folder any more
    try:
        loaded = labelwise.load(out)
        assert np.array_equal(loaded.predict_proba(test), clf.predict_proba(test))
        meta = json.loads((out / "labelwise.json").read_text())
        column = meta["preprocessing"]["columns"][0]
        assert column["type"] == "tokenized_text" and json.loads(column["tokenizer"])["model"]["type"] == "WordPiece"
        config = meta["model"]["options"]["config"]
        assert config["hidden_size"] == 32 and "id2label" not in config and "num_labels" not in config
        test.to_csv(tmp_path / "test.csv", index=False)
        assert main(["predict", str(out), str(tmp_path / "test.csv"), "--out", str(tmp_path / "p.csv")]) == 0
        assert len(pd.read_csv(tmp_path / "p.csv")) == len(test)
        assert main(["evaluate", str(out), str(tmp_path / "test.csv"), "--target", "label"]) == 0
    finally:
        shutil.move(moved, tiny_bert)


def test_truncation_and_several_columns_follow_the_models_own_tokenizer(tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    from labelwise.data.sources import source_from_frame

    frame = _frame("binary", 40, seed=3).assign(title=lambda f: f["review"].str.upper())
    frame.loc[0, "review"] = " ".join(["alpha"] * 100)  # longer than the 48 tokens the tokenizer allows
    source = source_from_frame(frame[["review", "title", "label"]], target="label")
    inputs = Inputs.fit(source, np.arange(40), text_model=str(tiny_bert), column_kinds={"title": "text"})
    rows = inputs.encode(source).values.only
    reference = AutoTokenizer.from_pretrained(tiny_bert, local_files_only=True)
    joined = [f"{a} [SEP] {b}" for a, b in zip(frame["review"], frame["title"], strict=True)]
    expected = reference(joined, truncation=True, max_length=48)["input_ids"]
    assert rows.dtype == torch.int32 and rows.shape[1:] == (2, 48)
    assert [row[0][row[1] == 1].tolist() for row in rows] == expected
    assert "cut at 48 tokens (1 of 40 training cells were longer" in inputs.kinds["review"]["why"]


def test_a_model_in_the_hub_cache_is_found_by_its_id(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    repo = cache / "models--tiny-org--tiny-bert"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_bert, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _frame("binary", 120, seed=4).to_csv(tmp_path / "data.csv", index=False)
    argv = ["train", str(tmp_path / "data.csv"), "--target", "label", "--model", "tiny-org/tiny-bert", "--pretrained"]
    assert main([*argv, "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    meta = json.loads((tmp_path / "run" / "labelwise.json").read_text())
    assert meta["model"]["options"]["model"] == "tiny-org/tiny-bert"


def test_a_missing_model_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    _frame("binary", 60, seed=5).to_csv(tmp_path / "data.csv", index=False)
    argv = ["train", str(tmp_path / "data.csv"), "--target", "label", "--model", "someone/absent", "--pretrained"]
    assert main([*argv, "--out", str(tmp_path / "runs" / "run")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "huggingface-cli download someone/absent" in lines[0]
    assert str(tmp_path / "empty-cache") in lines[0]
    assert list((tmp_path / "runs").iterdir()) == []  # neither runs/run nor runs/run.partial
    with pytest.raises(ConfigError, match="never downloads"):
        labelwise.fit(tmp_path / "data.csv", target="label", model="someone/absent", pretrained=True)


def test_timm_names_and_tables_without_text_keep_their_way(tmp_path: Path) -> None:
    assert text_model_for("resnet18", pretrained=True) is None  # an image model
    assert text_model_for("mlp", pretrained=True) is None and text_model_for("auto", pretrained=True) is None
    assert text_model_for("someone/model", pretrained=False) is None  # TF-IDF as before
    table = pd.DataFrame({"x": np.random.default_rng(0).normal(size=40), "label": ["a", "b"] * 20})
    # The text model is never looked for without text columns: the name reaches the backbone registry as before.
    with pytest.raises(ConfigError, match="unknown backbone 'someone/absent'"):
        labelwise.fit(table, target="label", model="someone/absent", pretrained=True, epochs=1, progress=False)


def test_a_table_with_text_combines_the_encoder_at_its_fine_tuning_rate(tiny_bert: Path) -> None:
    from labelwise.data.sources import source_from_frame

    frame = _frame("binary", 60, seed=6).assign(x=np.random.default_rng(6).normal(size=60))
    source = source_from_frame(frame, target="label")
    inputs = Inputs.fit(source, np.arange(60), text_model=str(tiny_bert))
    values = inputs.encode(source).values
    spec = inputs.model_spec(str(tiny_bert), values, pretrained=True)
    parts = spec.options["parts"]
    assert spec.backbone == "concat" and parts["text"]["backbone"] == "hf_text" and parts["text"]["pretrained"]
    assert parts["features"]["backbone"] == "mlp" and not parts["features"]["pretrained"]
    network = create_network(spec, Task(kind="binary", classes=("alpha", "beta")))
    assert network.backbone.preferred_lr == 3e-5 and network.backbone.preferred_weight_decay == 0.01
    rebuilt = create_network(spec, Task(kind="binary", classes=("alpha", "beta")), pretrained=False)
    assert network.state_dict().keys() == rebuilt.state_dict().keys()
    assert isinstance(network.backbone.parts["text"], HFText) and network.backbone.parts["text"].training


@pytest.mark.parametrize("architecture", ["bert", "distilbert", "roberta"])
def test_a_saved_encoder_is_rebuilt_from_its_config_alone(architecture: str, tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoModel

    from labelwise.models.hf_local import load_config
    from labelwise.models.hf_text import hf_text

    bert = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    sizes = {"bert": bert, "roberta": bert, "distilbert": {"dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 64}}
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.for_model(architecture, vocab_size=50, **sizes[architecture])).save_pretrained(
        tmp_path
    )
    options = {"in_features": None, "in_chans": None, "model": str(tmp_path), "config": load_config(str(tmp_path))}
    trained, rebuilt = hf_text(pretrained=True, **options), hf_text(pretrained=False, **options)
    rebuilt.load_state_dict(trained.state_dict(), strict=True)
    rows = torch.stack([torch.randint(3, 50, (2, 9), dtype=torch.int32), torch.ones(2, 9, dtype=torch.int32)], 1)
    rows[1, 1, 5:] = 0  # the second row is 5 tokens long
    features = trained.eval()(rows)
    assert features.shape == (2, 32) and trained.num_features == 32
    assert torch.equal(features, rebuilt.eval()(rows))
    assert torch.allclose(features[1], trained(rows[1:, :, :5])[0], atol=1e-5)  # padding changes nothing
