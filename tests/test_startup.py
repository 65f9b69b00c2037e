"""Start-up: `labelwise --help` and every subcommand's `--help` build their parser without the heavy libraries.

The parser reads every option's default from its dataclass field (`labelwise.options`); those modules must stay
light, or each `--help` pays for torch and Lightning (6.4 s and 1 GB before this test existed). Timing is in
`benchmarks/`; this test checks the import graph, which is what decides it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "lightning", "pandas", "numpy", "sklearn", "timm", "torchmetrics", "matplotlib", "onnx", "fastapi")
COMMANDS = ("inspect", "train", "evaluate", "predict", "export", "check", "serve", "demo")

_PROBE = """
import json, sys
from labelwise.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_imports_none_of_the_heavy_libraries(command: str | None) -> None:
    argv = ["--help"] if command is None else [command, "--help"]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


_PREDICT_NEVER = (
    "lightning", "timm", "torchmetrics", "sklearn", "torchvision", "matplotlib", "onnx", "fastapi", "transformers",
    "tokenizers",
)  # fmt: skip


def test_predicting_a_table_imports_no_training_or_scoring_library(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    import labelwise

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60), "label": ["p", "q"] * 30})
    frame.to_csv(tmp_path / "t.csv", index=False)
    labelwise.fit(tmp_path / "t.csv", out=tmp_path / "run", progress=False, epochs=1)
    argv = ["predict", str(tmp_path / "run"), str(tmp_path / "t.csv"), "--out", str(tmp_path / "p.csv")]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert (tmp_path / "p.csv").exists()
    assert loaded.isdisjoint(_PREDICT_NEVER), sorted(loaded & set(_PREDICT_NEVER))


def test_inspecting_a_table_imports_no_torch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A table's inspection is pandas and numpy work; torch cost it a second and 600 MB before the Task, the head
    # table and the splits stopped importing it at module level.
    import numpy as np
    import pandas as pd
    import torch  # noqa: F401 - the in-process report below is made with torch loaded, the subprocess's without

    from labelwise.cli import main

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60), "y": ["p", "q", "q"] * 20})
    frame.to_csv(tmp_path / "t.csv", index=False)
    argv = ["inspect", str(tmp_path / "t.csv"), "--target", "y", "--json"]
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)], capture_output=True, text=True, timeout=120, check=True
    )
    *report, modules = done.stdout.strip().splitlines()
    assert "torch" not in json.loads(modules)
    assert main(argv) == 0
    in_process = json.loads(capsys.readouterr().out)
    assert json.loads("\n".join(report)) == in_process
    assert in_process["split"]["valid"] == 12 and in_process["task"] == "binary"  # the report is a real one
