"""Scale-out through Lightning: the options, the refusals, the per-rank batch slices, and a real 2-process DDP run."""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import labelwise
from labelwise.cli import main
from labelwise.data.sources import source_from_frame
from labelwise.errors import ConfigError
from labelwise.losses import loss_for
from labelwise.train import TrainConfig
from labelwise.train import batches as batches_module
from labelwise.train.batches import EpochBatches
from labelwise.train.distributed import (
    check_rows_per_process,
    check_scale_out,
    is_global_zero,
    rank_slice_size,
    trainer_options,
    world_size,
)

# Every variable a launcher or cluster sets that the checks read; removed so the host's environment cannot leak in.
_LAUNCH_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "LSB_JOBID")  # fmt: skip

# Two CPU processes need two cores: check_scale_out refuses more processes than cores.
needs_two_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="2-process DDP needs 2 CPU cores")


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- TrainConfig -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"devices": 0}, r"devices=0; expected an int >= 1 or 'auto'.*--devices 2", id="devices-0"),
        pytest.param({"devices": "all"}, r"devices='all'; expected an int >= 1 or 'auto'", id="devices-str"),
        pytest.param({"devices": True}, r"devices=True; expected an int", id="devices-bool"),
        pytest.param({"num_nodes": 0}, r"num_nodes=0; expected an int >= 1.*--num-nodes 2", id="nodes"),
        pytest.param({"strategy": "deepspeed"}, r"strategy='deepspeed'; expected one of 'auto', 'ddp', 'fsdp'", id="s"),
        pytest.param({"precision": "16"}, r"precision='16'; expected one of '32', '16-mixed', 'bf16-mixed'", id="p"),
    ],
)
def test_bad_scale_out_values_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_scale_out_fields_round_trip_and_default_to_one_process() -> None:
    config = TrainConfig(devices="auto", num_nodes=2, strategy="ddp", precision="bf16-mixed")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    default = TrainConfig()
    assert (default.devices, default.num_nodes, default.strategy, default.precision) == (1, 1, "auto", "32")
    options = trainer_options(TrainConfig(accelerator="cpu", devices=2, strategy="ddp"), own_sampler=True)
    assert options == {"accelerator": "cpu", "devices": 2, "num_nodes": 1, "precision": "32", "strategy": "ddp",
                       "use_distributed_sampler": False}  # fmt: skip
    assert world_size(TrainConfig(accelerator="cpu", devices="auto")) == 1


# -- refusals before any work ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"devices": (os.cpu_count() or 1) + 1},
            rf"CPU processes, but this machine has {os.cpu_count()} \(os.cpu_count\(\)\). Pass --devices",
            id="too-many",
        ),
        pytest.param({"strategy": "fsdp"}, r"--strategy fsdp needs CUDA GPUs.*Use --strategy ddp", id="fsdp"),
        pytest.param({"precision": "16-mixed"}, r"--precision 16-mixed needs a CUDA GPU.*bf16-mixed", id="fp16"),
        pytest.param({"num_nodes": 2}, r"--num-nodes 2 but no cluster environment.*torchrun --nnodes", id="nodes"),
    ],
)
def test_what_this_machine_cannot_run_is_refused(bare_env: Any, kwargs: dict[str, Any], message: str) -> None:
    # As `labelwise train` runs it: under pytest-xdist sys.argv is the worker's `-c`, which is refused earlier.
    bare_env.setattr(sys, "argv", [sys.executable, "train"])
    with pytest.raises(ConfigError, match=message):
        check_scale_out(TrainConfig(accelerator="cpu", **kwargs))


@needs_two_cores
def test_several_processes_from_python_c_are_refused(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setattr(sys, "argv", ["-c"])  # what `python -c "labelwise.fit(...)"` leaves; a notebook is alike
    with pytest.raises(ConfigError, match=r"from a notebook or `python -c`.*torchrun --nproc-per-node N script.py"):
        check_scale_out(TrainConfig(accelerator="cpu", devices=2))
    bare_env.setenv("LOCAL_RANK", "0")  # started by a launcher: nothing to re-run
    check_scale_out(TrainConfig(accelerator="cpu", devices=2))


def test_several_nodes_pass_with_a_cluster_environment(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("MASTER_ADDR", "10.0.0.1")
    bare_env.setenv("NODE_RANK", "1")
    check_scale_out(TrainConfig(accelerator="cpu", num_nodes=2))


@pytest.mark.parametrize(
    ("env", "zero"),
    [
        pytest.param({}, True, id="one-process"),
        pytest.param({"RANK": "0", "LOCAL_RANK": "0"}, True, id="torchrun-0"),
        pytest.param({"RANK": "3", "LOCAL_RANK": "1"}, False, id="torchrun-3"),
        pytest.param({"SLURM_PROCID": "2"}, False, id="slurm-2"),
        pytest.param({"LOCAL_RANK": "1", "NODE_RANK": "0"}, False, id="relaunched-child"),
        pytest.param({"NODE_RANK": "1"}, False, id="second-node-first-process"),
    ],
)
def test_rank_zero_is_read_from_the_launcher(bare_env: pytest.MonkeyPatch, env: dict[str, str], zero: bool) -> None:
    for name, value in env.items():
        bare_env.setenv(name, value)
    assert is_global_zero() is zero


def test_batches_too_small_to_share_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"batch_size=3 rows per step over 2 processes.*--batch-size 4 or more"):
        check_rows_per_process(batch_size=3, num_valid=100, num_replicas=2)
    with pytest.raises(ConfigError, match=r"1 validation rows cannot be shared by 2 processes"):
        check_rows_per_process(batch_size=64, num_valid=1, num_replicas=2)


# -- the per-rank slices of each batch ---------------------------------------------------------------------------
def _epoch_on(rank: int, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[torch.Tensor]:
    monkeypatch.setattr(batches_module, "_rank", lambda num_replicas: rank)
    return list(EpochBatches(num_replicas=2, seed=3, **kwargs))


@pytest.mark.parametrize("num_samples", [40, 45, 41, 42], ids=["even", "rest-5", "rest-1", "rest-2"])
def test_two_ranks_split_every_batch_of_one_process(num_samples: int, monkeypatch: pytest.MonkeyPatch) -> None:
    one = list(EpochBatches(num_samples, batch_size=10, shuffle=True, seed=3))
    parts = [_epoch_on(rank, monkeypatch, num_samples=num_samples, batch_size=10, shuffle=True) for rank in (0, 1)]
    assert len(parts[0]) == len(parts[1])  # an unequal number of steps would hang DDP
    # A final batch of 2 rows is too short for 2 rows per rank: dropped (one process drops a final 1 row too).
    expected = one[:-1] if num_samples % 10 == 2 else one
    assert len(parts[0]) == len(expected)
    for whole, first, second in zip(expected, *parts, strict=True):
        torch.testing.assert_close(torch.cat([first, second]), whole)
        assert len(first) == rank_slice_size(len(whole), num_replicas=2, rank=0) and len(second) >= 2


def test_two_ranks_validate_every_row_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [_epoch_on(rank, monkeypatch, num_samples=21, batch_size=10, shuffle=False) for rank in (0, 1)]
    assert [len(p) for p in parts] == [2, 2]  # the final row joins the batch before it
    assert sorted(torch.cat([*parts[0], *parts[1]]).tolist()) == list(range(21))


def test_a_group_holds_the_rank_slices_of_consecutive_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    groups = _epoch_on(1, monkeypatch, num_samples=64, batch_size=8, shuffle=True, group=3)
    assert [len(g) for g in groups] == [12, 12, 8]  # 8 batches, 4 rows of each for rank 1, 3 batches a group


def test_an_iterating_process_group_of_another_size_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"cut for 2 processes but 1 are training"):
        list(EpochBatches(10, batch_size=4, shuffle=False, num_replicas=2))


def test_bf16_mixed_trains_on_the_cpu(tmp_path: Path) -> None:
    from torch import nn

    from labelwise.task import Task
    from labelwise.train import fit_network

    task = Task(kind="binary", classes=("no", "yes"))
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).float()
    config = TrainConfig(epochs=1, accelerator="cpu", precision="bf16-mixed", guards="off")
    result = fit_network(nn.Linear(4, 1), task, train=(x, y), valid=(x, y), loss=loss_for(task), config=config,
                         run_dir=tmp_path, progress_bar=False)  # fmt: skip
    assert result.epochs_run == 1 and np.isfinite(result.history[0]["val_loss"])


# -- the CLI -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    # A fixed validation split, so that the validation loss can be recomputed from the saved model.
    frame["is_valid"] = np.random.default_rng(0).random(len(frame)) < 0.2
    path = tmp_path_factory.mktemp("cancer") / "cancer.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(["--devices", str((os.cpu_count() or 1) + 1)], r"asks for \d+ CPU processes", id="devices"),
        pytest.param(["--precision", "fp8"], r"argument --precision: invalid choice: 'fp8'", id="precision"),
        pytest.param(["--strategy", "horovod"], r"argument --strategy: invalid choice: 'horovod'", id="strategy"),
        pytest.param(["--strategy", "fsdp"], r"--strategy fsdp needs CUDA GPUs", id="fsdp"),
        pytest.param(["--devices", "two"], r"argument --devices: expected an int or 'auto', got 'two'", id="type"),
    ],
)
def test_cli_refusals_are_one_line_and_write_nothing(
    cancer_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    out = tmp_path / "run"
    code = _exit_code(["train", str(cancer_csv), "--out", str(out), "--accelerator", "cpu", "--quiet", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("labelwise: error: "), err
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []  # no run, no RUN.partial, no staging folder


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as done:  # argparse's own usage errors exit from the parser
        return int(done.code or 0)


def _train(cancer_csv: Path, out: Path, *flags: str) -> list[str]:
    return ["train", str(cancer_csv), "--target", "target", "--out", str(out), "--epochs", "4", "--seed", "0",
            "--accelerator", "cpu", "--quiet", *flags]  # fmt: skip


@needs_two_cores
def test_two_process_ddp_matches_one_process_and_writes_once(
    cancer_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_train(cancer_csv, tmp_path / "one")) == 0
    capsys.readouterr()
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
    command = [sys.executable, "-m", "labelwise.cli", *_train(cancer_csv, tmp_path / "ddp", "--devices", "2",
                                                                  "--strategy", "ddp")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("saved ") == 1, done.stdout  # rank 1 prints nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "one"]  # no RUN.partial or staging folder left
    assert len(list((tmp_path / "ddp").rglob("labelwise.json"))) == 1
    one, ddp = (labelwise.load(tmp_path / name) for name in ("one", "ddp"))
    record = ddp.info["training"]
    assert record["config"]["devices"] == 2 and record["num_valid"] == int(pd.read_csv(cancer_csv)["is_valid"].sum())
    # The history is what rank 0 logged, and val_loss is the mean over all validation rows (both ranks' slices):
    # the saved best weights score it again on the whole validation split.
    logged = pd.read_csv(tmp_path / "ddp" / "logs" / "metrics.csv").dropna(subset=["val_loss"])
    np.testing.assert_allclose(logged["val_loss"], [h["val_loss"] for h in record["history"]], rtol=1e-6)
    best = record["history"][record["best_epoch"]]["val_loss"]
    assert abs(_valid_loss(ddp, cancer_csv) - best) < 1e-4
    # Tolerance: each process normalizes its half-batch with its own BatchNorm statistics (no SyncBatchNorm on
    # CPU), so the weights differ slightly from one process's; the scores stay within a few validation items.
    for metric, tolerance in (("roc_auc", 0.02), ("accuracy", 0.04)):
        assert abs(one.info["metrics"]["valid"][metric] - ddp.info["metrics"]["valid"][metric]) <= tolerance


def _valid_loss(clf: Any, path: Path) -> float:
    frame = pd.read_csv(path)
    frame = frame[frame["is_valid"]].drop(columns="is_valid")
    source = source_from_frame(frame, target="target")
    logits = clf.predict_source(source).outputs.raw  # uncalibrated, as training scored them
    return float(loss_for(clf.task)(logits, clf.task.encode(source.labels)))


# Trains a network without BatchNorm or dropout on 1 or 2 processes; rank 0 saves the weights.
_PARITY_SCRIPT = """
import sys, tempfile, torch, lightning as L
from torch import nn
from labelwise.losses import loss_for
from labelwise.task import Task
from labelwise.train import TrainConfig, fit_network
devices, out = int(sys.argv[1]), sys.argv[2]
task = Task(kind="multiclass", classes=("a", "b", "c"))
x = torch.randn(600, 8, generator=torch.Generator().manual_seed(0))
y = x[:, :3].argmax(1)
L.seed_everything(0, verbose=False)
network = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
config = TrainConfig(epochs=3, accelerator="cpu", devices=devices, batch_size=64, guards="off")
result = fit_network(network, task, train=(x[:500], y[:500]), valid=(x[500:], y[500:]), loss=loss_for(task),
                     config=config, run_dir=tempfile.mkdtemp(), progress_bar=False)
if not (torch.distributed.is_initialized() and torch.distributed.get_rank() > 0):
    torch.save({"weights": result.network.state_dict(), "history": result.history}, out)
"""


@needs_two_cores
def test_two_processes_take_the_steps_of_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "parity.py"
    script.write_text(_PARITY_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
    done = subprocess.run([sys.executable, str(script), "2", str(tmp_path / "w2.pt")], capture_output=True, text=True,
                          timeout=240, env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.setattr(sys, "argv", [str(script), "1", str(tmp_path / "w1.pt")])
    runpy.run_path(str(script), run_name="__main__")  # one process: in this one
    runs = {n: torch.load(tmp_path / f"w{n}.pt", weights_only=True) for n in (1, 2)}
    # Each process takes half of every batch of 64 and DDP averages the gradients: the same steps as one process,
    # up to float32 summation order (~3e-8 here).
    for name, weight in runs[1]["weights"].items():
        torch.testing.assert_close(runs[2]["weights"][name], weight, rtol=0, atol=1e-6)
    one, two = ([h["val_loss"] for h in runs[n]["history"]] for n in (1, 2))
    np.testing.assert_allclose(two, one, rtol=1e-5)
