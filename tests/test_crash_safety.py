"""A training process killed with SIGKILL anywhere leaves no half-written run, and `--resume` finishes it.

Each case kills a real `labelwise train` process at one point (see `_killpoints`), checks what is on disk,
resumes it, and compares the resumed model's test accuracy with an uninterrupted run's.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import labelwise
from labelwise.datasets import Demo, make_demo

pytestmark = pytest.mark.slow

_HERE = Path(__file__).parent
_TRAIN = ["train", "--epochs", "8", "--quiet", "--seed", "0"]
# (point, occurrence): the cancer table takes ~15 optimizer steps an epoch at the auto batch size.
_KILLS = [
    ("prepare", 1),
    ("step", 3),  # mid epoch 0: no checkpoint yet
    ("step", 50),  # mid epoch 3, three checkpoints written
    ("checkpoint-save", 4),  # last.ckpt of epoch 3 on disk as a temporary file, not renamed
    ("artifact-write", 1),  # training done, model.safetensors written, labelwise.json not
    ("swap", 1),  # the finished run is in place; the resume state is not yet removed
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return make_demo("cancer", tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def uninterrupted_accuracy(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> float:
    run = tmp_path_factory.mktemp("whole") / "run"
    assert _train(demo, run).returncode == 0
    return _test_accuracy(run, demo)


def _train(
    demo: Demo, run: Path, *options: str, kill: tuple[str, int] | None = None
) -> subprocess.CompletedProcess[str]:
    """``labelwise train`` in a fresh process, optionally killed at ``kill`` (see `_killpoints`)."""
    command = [str(_HERE / "_killpoints.py"), kill[0], str(kill[1])] if kill else ["-m", "labelwise"]
    args = [*_TRAIN, str(demo.train), "--target", *demo.target, "--out", str(run), *options]
    return subprocess.run([sys.executable, *command, *args], capture_output=True, text=True, timeout=300)


def _test_accuracy(run: Path, demo: Demo) -> float:
    return labelwise.load(run).evaluate(demo.test, target=demo.target)["accuracy"]


@pytest.mark.parametrize(("point", "occurrence"), _KILLS, ids=[f"{p}-{n}" for p, n in _KILLS])
def test_killed_training_resumes_to_the_same_quality(
    demo: Demo, uninterrupted_accuracy: float, tmp_path: Path, point: str, occurrence: int
) -> None:
    run = tmp_path / "run"
    killed = _train(demo, run, kill=(point, occurrence))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # The run directory holds a finished run or nothing, never half of one.
    if run.exists():
        labelwise.load(run)
    resumed = _train(demo, run, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no RUN.partial, staging or old folders left
    assert not (run / "checkpoints" / "last.ckpt").exists() and not (run / "resume.json").exists()
    assert abs(_test_accuracy(run, demo) - uninterrupted_accuracy) <= 0.01


def test_without_resume_an_interrupted_run_is_kept_not_overwritten(demo: Demo, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _train(demo, run, kill=("step", 50)).returncode == -signal.SIGKILL
    again = _train(demo, run)
    assert again.returncode == 2
    assert again.stderr.startswith("labelwise: error: ") and again.stderr.count("\n") == 1
    assert "interrupted training run. Pass --resume" in again.stderr
    assert (tmp_path / "run.partial" / "checkpoints" / "last.ckpt").is_file() and not run.exists()


def test_resume_with_other_options_is_refused(demo: Demo, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _train(demo, run, kill=("step", 50)).returncode == -signal.SIGKILL
    other = _train(demo, run, "--resume", "--lr", "0.01")
    assert other.returncode == 2
    assert "other options (lr: None -> 0.01)" in other.stderr
    assert (tmp_path / "run.partial" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("point", "code", "said"), [("sigint-step", 130, "interrupted"), ("sigterm-step", 143, "SIGTERM")]
)
def test_ctrl_c_and_sigterm_keep_the_epochs_for_resume(
    demo: Demo, uninterrupted_accuracy: float, tmp_path: Path, point: str, code: int, said: str
) -> None:
    run = tmp_path / "run"
    stopped = _train(demo, run, kill=(point, 50))
    assert stopped.returncode == code, stopped.stderr[-2000:]
    lines = stopped.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and "add --resume to the same command" in lines[0]
    assert not run.exists() and (tmp_path / "run.partial" / "checkpoints" / "last.ckpt").is_file()
    assert _train(demo, run, "--resume").returncode == 0
    assert abs(_test_accuracy(run, demo) - uninterrupted_accuracy) <= 0.01
