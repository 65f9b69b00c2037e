"""Run the labelwise command line and SIGKILL the process at a named point: a crash no handler can soften.

    python tests/_killpoints.py POINT N labelwise-args...

POINT names where the kill happens, N which occurrence (1-based) of it:

    prepare           after the data is read, split and encoded, before training starts
    step              before the N-th optimizer step (mid-epoch)
    sigint-step       as step, but the process sends itself SIGINT (Ctrl+C) instead
    sigterm-step      as step, but SIGTERM (what `kill` and job schedulers send)
    checkpoint-save   when the N-th write of last.ckpt is on disk but not yet renamed into place
    artifact-write    after model.safetensors is written, before labelwise.json
    swap              after the finished run is swapped into place, before the resume state is cleaned up
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

POINTS = ("prepare", "step", "sigint-step", "sigterm-step", "checkpoint-save", "artifact-write", "swap")


def _die(signum: int = signal.SIGKILL) -> None:
    os.kill(os.getpid(), signum)


def _after_nth(
    function: Callable[..., Any], n: int, *, before: bool = False, signum: int = signal.SIGKILL
) -> Callable[..., Any]:
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if before and calls[0] == n:
            _die(signum)
        result = function(*args, **kwargs)
        if not before and calls[0] == n:
            _die(signum)
        return result

    return wrapper


def install(point: str, n: int) -> None:
    """Patch labelwise so that the process kills itself at ``point``'s ``n``-th occurrence."""
    from labelwise import fitting
    from labelwise.train import module

    if point == "prepare":
        # The data is prepared before the run folder is made; die as the prepared data enters training, in RUN.partial.
        fitting.train = _after_nth(fitting.train, n, before=True)  # type: ignore[attr-defined]
    elif point in ("step", "sigint-step", "sigterm-step"):
        signum = {"step": signal.SIGKILL, "sigint-step": signal.SIGINT, "sigterm-step": signal.SIGTERM}[point]
        module.LabelwiseModule._check_finite = _after_nth(  # type: ignore[method-assign]
            module.LabelwiseModule._check_finite, n, before=True, signum=signum
        )
    elif point == "checkpoint-save":
        replace, saves = os.replace, [0]

        def replace_unless_nth_last(src: Any, dst: Any) -> None:
            if Path(dst).name == "last.ckpt":
                saves[0] += 1
                if saves[0] == n:
                    _die()
            replace(src, dst)

        os.replace = replace_unless_nth_last
    elif point == "artifact-write":
        import safetensors.torch  # artifact imports save_file when it saves, to keep torch out of `predict`

        safetensors.torch.save_file = _after_nth(safetensors.torch.save_file, n)
    elif point == "swap":
        fitting.drop_resume_state = _after_nth(fitting.drop_resume_state, n, before=True)  # type: ignore[attr-defined]
    else:
        raise SystemExit(f"unknown kill point {point!r}; expected one of {', '.join(POINTS)}")


if __name__ == "__main__":
    install(sys.argv[1], int(sys.argv[2]))
    from labelwise.cli import main

    sys.exit(main(sys.argv[3:]))
