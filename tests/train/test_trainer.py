"""fit_network: results, best weights, stopping, guards, files, and quietness."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from _factories import make_task
from labelwise.errors import ConfigError, DataError, TrainingError
from labelwise.losses import loss_for
from labelwise.models import build_network, create_backbone
from labelwise.task import Task, TaskKind
from labelwise.train import InMemoryDataset, TrainConfig, TrainResult, fit_network, predict_logits

# Runs of a few steps end collapsed or unlearned, as the guards rightly say; they are tested in test_guards.py.
pytestmark = pytest.mark.filterwarnings("ignore::labelwise.errors.TrainingWarning")


def _table(task: Task, *, n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features whose first columns decide the targets, so that a small MLP learns them."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen)
    scores = x[:, : task.num_classes] if task.num_classes <= 6 else x
    if task.kind is TaskKind.MULTILABEL:
        return x, (scores > 0.3).float()
    index = scores.argmax(dim=1) % task.num_classes
    return x, index.to(task.target_dtype)


def _mlp(task: Task, *, seed: int = 0) -> nn.Module:
    L.seed_everything(seed, verbose=False)
    return build_network(create_backbone("mlp", in_features=6, hidden=[16]), task)


def _fit(task: Task, tmp_path: Path, **kwargs: object) -> TrainResult:
    train = kwargs.pop("train", _table(task, seed=0))
    valid = kwargs.pop("valid", _table(task, n=40, seed=1))
    network = kwargs.pop("network", None) or _mlp(task)
    config = kwargs.pop("config", TrainConfig(epochs=3))
    loss = kwargs.pop("loss", loss_for(task))
    return fit_network(
        network,
        task,
        train=train,
        valid=valid,
        loss=loss,
        config=config,  # type: ignore[arg-type]
        run_dir=tmp_path,
        progress_bar=False,
        **kwargs,
    )  # type: ignore[arg-type]


def test_result_for_each_kind(kind: TaskKind, tmp_path: Path) -> None:
    task = make_task(kind)
    result = _fit(task, tmp_path)
    assert result.epochs_run == 3 == len(result.history) and result.stopped_reason == "max_epochs"
    assert result.valid_outputs.shape == (40, task.head_width) and result.valid_outputs.dtype == torch.float32
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert not result.network.training
    assert result.checkpoint == tmp_path / "checkpoints" / "best.ckpt" and result.checkpoint.is_file()
    assert (tmp_path / "logs" / "metrics.csv").read_text().startswith("collapse,epoch,step,train_loss,val_loss")


def test_best_weights_are_restored(tmp_path: Path) -> None:
    # Validation targets are the opposite of the training targets: the more it learns, the worse it validates,
    # so the first epoch is the best one and the last one is far from it.
    task = make_task("binary")
    x, y = _table(task)
    result = _fit(task, tmp_path, train=(x, y), valid=(x, 1 - y), config=TrainConfig(epochs=5, lr=0.03, patience=10))
    val_losses = [row["val_loss"] for row in result.history]
    assert result.best_epoch == 0 == min(range(5), key=val_losses.__getitem__)
    assert val_losses[-1] > val_losses[0] + 0.05
    best_loss = float(loss_for(task)(result.valid_outputs, 1 - y))
    assert best_loss == pytest.approx(val_losses[0], rel=1e-5) == pytest.approx(result.best_val_loss, rel=1e-5)
    torch.testing.assert_close(result.valid_outputs, predict_logits(result.network, x), rtol=0, atol=0)


def test_early_stopping_after_patience_epochs(tmp_path: Path) -> None:
    task = make_task("binary")
    x, y = _table(task)
    result = _fit(task, tmp_path, train=(x, y), valid=(x, 1 - y), config=TrainConfig(epochs=30, lr=0.03, patience=2))
    assert result.stopped_reason == "early_stopping"
    assert result.epochs_run == 3 and result.best_epoch == 0  # epoch 0, then two epochs without improvement


def test_time_budget_stops_training(tmp_path: Path) -> None:
    task = make_task("multiclass")
    result = _fit(
        task, tmp_path, train=_table(task, n=4000), config=TrainConfig(epochs=1000, batch_size=16, time_budget=0.5)
    )
    assert result.stopped_reason == "time_budget" and result.epochs_run < 1000
    assert result.valid_outputs.shape == (40, 4)


def test_non_finite_loss_raises_with_what_to_try(tmp_path: Path) -> None:
    class Diverged(nn.Module):
        def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return logits.sum() * float("nan")

    with pytest.raises(
        TrainingError,
        match=r"the loss became non-finite \(NaN or inf\) in epoch 0, batch 0 .*lower learning rate "
        r"\(lr=0.003 now; e.g. --lr 0.0003\)",
    ):
        _fit(make_task("binary"), tmp_path, loss=Diverged())


class _InfGradient(torch.autograd.Function):
    """Identity forward, infinite gradient backward: a finite loss whose gradients are not."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("inf")


def test_non_finite_gradients_stop_before_the_weights_change(tmp_path: Path) -> None:
    task = make_task("binary")
    network = _mlp(task)
    before = {k: v.clone() for k, v in network.named_parameters()}  # not buffers: BatchNorm updates them in forward

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return loss_for(task)(_InfGradient.apply(logits), targets)  # type: ignore[no-untyped-call]

    with pytest.raises(TrainingError, match=r"the gradients became non-finite .* in epoch 0, batch 0"):
        _fit(task, tmp_path, network=network, loss=loss)
    for name, value in network.named_parameters():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)


def test_divergence_after_good_epochs_names_the_kept_checkpoints(tmp_path: Path) -> None:
    task = make_task("binary")
    calls = [0]

    def diverging(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        value = loss_for(task)(logits, targets)
        return value * float("nan") if calls[0] > 12 else value  # 96 rows in 3 batches + 1 validation call a epoch

    with pytest.raises(TrainingError, match=r"in epoch 3, batch 0 .*kept in .*checkpoints"):
        _fit(task, tmp_path, loss=diverging, config=TrainConfig(epochs=6, batch_size=32))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_non_finite_inputs_are_named(tmp_path: Path) -> None:
    task = make_task("binary")
    x, y = _table(task)
    x[[3, 17], 2] = torch.tensor([float("nan"), float("inf")])
    with pytest.raises(DataError, match=r"train inputs hold NaN or infinite values in rows 3, 17.*Impute or drop"):
        _fit(task, tmp_path, train=(x, y))


@pytest.mark.parametrize(
    ("train", "error", "message"),
    [
        pytest.param(
            (torch.zeros(4, 6),), ConfigError, r"train= must be an \(inputs, targets\) pair.*tuple of 1", id="one"
        ),
        pytest.param([torch.zeros(4, 6), torch.zeros(4)], ConfigError, r"train= must be .* got list", id="list"),
        pytest.param(
            (torch.zeros(0, 6), torch.zeros(0)), DataError, r"the train data has 0 rows; .* at least 2", id="empty"
        ),
        pytest.param(
            (torch.zeros(1, 6), torch.zeros(1)), DataError, r"the train data has 1 rows; .* at least 2", id="one-row"
        ),
        pytest.param(
            (torch.zeros(4, 6), torch.zeros(3)), DataError, r"inputs hold 4 rows but targets hold 3", id="misaligned"
        ),
    ],
)
def test_bad_train_data(train: object, error: type[Exception], message: str, tmp_path: Path) -> None:
    with pytest.raises(error, match=message):
        _fit(make_task("binary"), tmp_path, train=train)


def test_ctrl_c_stops_and_keeps_the_best_epoch(tmp_path: Path) -> None:
    task = make_task("binary")
    calls = []

    class InterruptAfterTwoEpochs(nn.Module):
        def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            calls.append(len(targets))
            if len(calls) == 2 * 7:  # 6 train steps + 1 validation batch per epoch
                os.kill(os.getpid(), signal.SIGINT)
            return loss_for(task)(logits, targets)

    before = signal.getsignal(signal.SIGINT)
    result = _fit(task, tmp_path, loss=InterruptAfterTwoEpochs(), config=TrainConfig(epochs=50, batch_size=16))
    assert result.stopped_reason == "interrupted" and 2 <= result.epochs_run < 50
    assert signal.getsignal(signal.SIGINT) is before  # our handler is gone


def test_same_seed_same_result(tmp_path: Path) -> None:
    task = make_task("multiclass")
    first = _fit(task, tmp_path / "a", config=TrainConfig(epochs=2, seed=5), network=_mlp(task, seed=5))
    second = _fit(task, tmp_path / "b", config=TrainConfig(epochs=2, seed=5), network=_mlp(task, seed=5))
    torch.testing.assert_close(first.valid_outputs, second.valid_outputs, rtol=0, atol=0)


def test_rerun_into_the_same_directory(tmp_path: Path) -> None:
    task = make_task("binary")
    _fit(task, tmp_path)
    # No "directory not empty" warning (warnings are errors here); the checkpoints are overwritten.
    result = _fit(task, tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert result.epochs_run == 3


def test_silent_without_progress_bar(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    _fit(make_task("binary"), tmp_path)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_bar_runs(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    task = make_task("binary")
    x, y = _table(task)
    fit_network(
        _mlp(task),
        task,
        train=(x, y),
        valid=(x, y),
        loss=loss_for(task),
        config=TrainConfig(epochs=1),
        run_dir=tmp_path,
    )
    # Captured output is no terminal: one plain line per epoch on stderr, no bar redraws on stdout.
    out, err = capfd.readouterr()
    assert "epoch 1/1  train_loss" in err and "Epoch 0" not in out


def test_a_terminal_gets_the_live_bar() -> None:
    import io

    from lightning.pytorch.callbacks import TQDMProgressBar

    from labelwise.train.progress import EpochLines, progress_callback

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(progress_callback(steps=50, stream=Terminal()), TQDMProgressBar)
    assert isinstance(progress_callback(steps=50, stream=io.StringIO()), EpochLines)


def test_images_with_a_batch_transform(tmp_path: Path) -> None:
    task = make_task("multiclass")
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (40, 1, 16, 16), generator=gen, dtype=torch.uint8)
    targets = torch.arange(40) % 4
    calls = []

    def augment(batch: torch.Tensor) -> torch.Tensor:
        calls.append(len(batch))
        return torch.roll(batch, shifts=1, dims=-1).float() / 255

    train = InMemoryDataset(pixels, targets, transform=augment)
    network = build_network(create_backbone("cnn", in_chans=1, widths=[4, 8]), task)
    result = _fit(task, tmp_path, train=train, valid=(pixels, targets), network=network, config=TrainConfig(epochs=1))
    assert sum(calls) == 40 and len(calls) < 40 and result.valid_outputs.shape == (40, 4)


def test_any_dataset_of_items(tmp_path: Path) -> None:
    task = make_task("multilabel")
    x, y = _table(task)
    result = _fit(task, tmp_path, train=TensorDataset(x, y), valid=TensorDataset(x[:30], y[:30]))
    assert result.valid_outputs.shape == (30, 4) and result.epochs_run == 3
