"""Start-up: `labelwise --help` and every subcommand's `--help` build their parser without the heavy libraries.

The parser reads every option's default from its dataclass field (`labelwise.options`); those modules must stay
light, or each `--help` pays for torch and Lightning (6.4 s and 1 GB before this test existed). Timing is in
`benchmarks/`; this test checks the import graph, which is what decides it.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
