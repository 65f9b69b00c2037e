"""Real training runs on scikit-learn's bundled data with default settings must reach a stated score.

Both build tensors straight from scikit-learn (no labelwise.data), use the default backbone and a
default `TrainConfig()`, and score on a held-out test split that training never sees.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from labelwise.losses import loss_for
from labelwise.models import build_network, create_backbone
from labelwise.task import infer_task
from labelwise.train import TrainConfig, fit_network, predict_logits

pytestmark = pytest.mark.slow


@pytest.fixture
def two_threads() -> Iterator[None]:
    """The runs are specified on 2 CPU cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified ~70% train / 15% valid / 15% test row indices."""
    rows = np.arange(len(labels))
    train, rest = train_test_split(rows, test_size=0.3, stratify=labels, random_state=0)
    valid, test = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=0)
    return train, valid, test


def test_cnn_on_digits_reaches_98_percent_within_a_minute(two_threads: None, tmp_path: Path) -> None:
    # Other processes on the 2 cores slow 2-thread torch down several-fold (threads wait on each other), so
    # the time limit is only checked when the machine was idle; the score is checked always.
    load_before = os.getloadavg()[0]
    start, start_cpu = time.perf_counter(), time.process_time()
    digits = load_digits()
    # 8x8 images with values 0..16, upscaled to 32x32 uint8 grayscale: what an image folder would give.
    small = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    pixels = (F.interpolate(small, size=32, mode="bilinear", align_corners=False) * 255).round().to(torch.uint8)
    task = infer_task(digits.target.tolist())
    targets = task.encode(digits.target.tolist())
    train, valid, test = _split(digits.target)

    L.seed_everything(0, verbose=False)
    network = build_network(create_backbone("cnn", in_chans=1), task)
    result = fit_network(
        network,
        task,
        train=(pixels[train], targets[train]),
        valid=(pixels[valid], targets[valid]),
        loss=loss_for(task),
        config=TrainConfig(),
        run_dir=tmp_path,
        progress_bar=False,
    )
    decisions = predict_logits(result.network, pixels[test]).argmax(dim=1)
    accuracy = float((decisions == targets[test]).float().mean())
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    print(
        f"digits: test accuracy {accuracy:.4f}, {result.epochs_run} epochs ({result.stopped_reason}), "
        f"{seconds:.1f} s wall, {cpu_seconds:.1f} s CPU"
    )
    assert accuracy >= 0.98
    if load_before < 2.0:
        assert seconds < 60  # the whole run, data included, on 2 otherwise idle cores
    else:
        print(f"digits: time limit not checked, load average {load_before:.1f} from other processes")


def test_mlp_on_breast_cancer_reaches_auc_099(two_threads: None, tmp_path: Path) -> None:
    data = load_breast_cancer()
    train, valid, test = _split(data.target)
    mean, std = data.data[train].mean(axis=0), data.data[train].std(axis=0)
    features = torch.tensor((data.data - mean) / std, dtype=torch.float32)
    task = infer_task(data.target.tolist())
    targets = task.encode(data.target.tolist())

    L.seed_everything(0, verbose=False)
    network = build_network(create_backbone("mlp", in_features=features.shape[1]), task)
    result = fit_network(
        network,
        task,
        train=(features[train], targets[train]),
        valid=(features[valid], targets[valid]),
        loss=loss_for(task),
        config=TrainConfig(),
        run_dir=tmp_path,
        progress_bar=False,
    )
    probs = task.probabilities(predict_logits(result.network, features[test]))[:, 1]
    auc = roc_auc_score(targets[test].numpy(), probs.numpy())
    print(f"breast cancer: test ROC-AUC {auc:.4f}, {result.epochs_run} epochs ({result.stopped_reason})")
    assert auc >= 0.99
