"""Huge label spaces: step time and loss memory of the full, chunked and sampled softmax losses.

    python benchmarks/huge_labels.py                      # --part steps: the table below, ~5 minutes on 2 cores
    python benchmarks/huge_labels.py --classes 10000 100000

`--part steps` (K): for each C, one training step of the loss alone -- forward + backward on features
(512, 256) and a head weight (C, 256), both requiring grad -- as the median of a few steps after warm-up, and
the peak memory of the loss ABOVE the weights and their gradients. Every (loss, C) runs in its own subprocess
so peaks do not mix: the child allocates features, weight, bias and a gradient-sized buffer for each (touched,
then freed, so its pages count in the baseline and are reused by the real gradients), reads
`resource.getrusage(RUSAGE_SELF).ru_maxrss` as the baseline, runs the steps, and reports the rise of
ru_maxrss over it. Then chunked vs full equality (loss and gradients, max abs diff) at the smaller C.

`--part budget`: P@1 on `labelwise demo extreme` after the same wall-clock budget for each loss (`run_budget`).

`--part table`: a 50,000-class table, zero-config `labelwise train` against a bare full-softmax loop: time to
the loop's P@1 and peak memory (`huge_table.run_table`).

To add a part: write `run_<name>(args) -> str` returning markdown and register it in
`PARTS`; reuse `_child` / `_spawn` for any measurement that needs its own process.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from labelwise.huge import DEFAULT_NUM_SAMPLED, Proposal, chunked_cross_entropy, sampled_softmax_loss
from labelwise.huge.choice import available_memory_bytes

sys.path.insert(0, str(Path(__file__).parent))
from huge_table import run_table  # noqa: E402 - the benchmarks folder is not a package

BATCH, HIDDEN, THREADS = 512, 256, 2
LOSSES = ("full", "chunked", "sampled")


def _head(num_classes: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(BATCH, HIDDEN, generator=g).requires_grad_()
    weight = (torch.randn(num_classes, HIDDEN, generator=g) * HIDDEN**-0.5).requires_grad_()
    bias = torch.zeros(num_classes).requires_grad_()
    targets = torch.randint(num_classes, (BATCH,), generator=g)
    return features, weight, bias, targets


def _loss_fn(name: str, num_classes: int) -> Callable[..., torch.Tensor]:
    if name == "full":
        return lambda x, w, b, y: F.cross_entropy(x @ w.T + b, y)
    if name == "chunked":
        return lambda x, w, b, y: chunked_cross_entropy(x, w, b, y)
    proposal = Proposal.create("log_uniform", num_classes=num_classes)
    g = torch.Generator().manual_seed(1)
    return lambda x, w, b, y: sampled_softmax_loss(
        x, w, b, y, proposal=proposal, num_sampled=min(DEFAULT_NUM_SAMPLED, num_classes - 1), generator=g
    )


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _child(name: str, num_classes: int) -> dict[str, float]:
    """One (loss, C) measurement, run in a fresh process by `_spawn`."""
    torch.set_num_threads(THREADS)
    features, weight, bias, targets = _head(num_classes)
    for tensor in (features, weight, bias):  # gradient-sized pages, counted in the baseline, reused below
        buffer = torch.ones_like(tensor)
        del buffer
    loss_fn = _loss_fn(name, num_classes)
    small = _head(64, seed=3)  # load kernels, thread pools and autograd once, outside the measured peak
    torch.autograd.grad(_loss_fn(name, 64)(*small), small[:3])
    baseline = _max_rss_bytes()
    # A 2-core CPU step at 10^6 classes takes ~a minute for full/chunked: one step there, after the warm-up above.
    warmup, repeats = (0, 1) if num_classes >= 10**6 else (1, 2) if num_classes >= 10**5 else (2, 5)
    times = []
    for step in range(warmup + repeats):
        start = time.perf_counter()
        loss = loss_fn(features, weight, bias, targets)
        grads = torch.autograd.grad(loss, (features, weight, bias))
        if step >= warmup:
            times.append(time.perf_counter() - start)
        del loss, grads
    return {"seconds": statistics.median(times), "peak_bytes": _max_rss_bytes() - baseline}


def _equality(num_classes: int) -> dict[str, float]:
    torch.set_num_threads(THREADS)
    features, weight, bias, targets = _head(num_classes, seed=2)
    results = {}
    for name in ("full", "chunked"):
        loss = _loss_fn(name, num_classes)(features, weight, bias, targets)
        results[name] = [loss.detach(), *torch.autograd.grad(loss, (features, weight, bias))]
    diffs = [float((a - b).abs().max()) for a, b in zip(results["full"], results["chunked"], strict=True)]
    return dict(zip(("loss", "grad_features", "grad_weight", "grad_bias"), diffs, strict=True))


def _fits(name: str, num_classes: int) -> bool:
    """Whether `name` at C classes fits in the available memory (full needs ~4 (N, C) float32 buffers)."""
    needed = 2 * num_classes * HIDDEN * 4 + (4 * BATCH * num_classes * 4 if name == "full" else 0)
    return needed * 1.2 < available_memory_bytes()


def _spawn(*child_args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *child_args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_steps(args: argparse.Namespace) -> str:
    """The step-time / loss-memory table and the chunked-vs-full equality table, as markdown."""
    rows = [
        f"batch {BATCH}, hidden {HIDDEN}, float32, {THREADS} threads, sampled K={DEFAULT_NUM_SAMPLED} (log-uniform)",
        "",
        "| classes | loss | s / step | loss memory above weights+grads | vs full: speed | vs full: memory |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    previous: tuple[int, dict[str, float]] | None = None
    for num_classes in args.classes:
        measured = {name: _spawn("steps", name, str(num_classes)) for name in LOSSES if _fits(name, num_classes)}
        full, note = measured.get("full"), ""
        if full is None and previous is not None:
            # The full loss is linear in C (one (N, C) matmul and (N, C) buffers), so scale the last measured C.
            ratio = num_classes / previous[0]
            full = {key: value * ratio for key, value in previous[1].items()}
            note = f" (full extrapolated x{ratio:g} from {previous[0]:,}: too little free memory to run it)"
            rows.append(f"| {num_classes:,} | full (extrapolated) | {full['seconds']:.3f} | "
                        f"{full['peak_bytes'] / 2**20:,.0f} MiB | 1.0x | 100.0% |")  # fmt: skip
        if "full" in measured:
            previous = (num_classes, measured["full"])
        for name, m in measured.items():
            speed = f"{full['seconds'] / m['seconds']:.1f}x" if full else "-"
            memory = f"{m['peak_bytes'] / max(full['peak_bytes'], 1):.1%}" if full else "-"
            rows.append(
                f"| {num_classes:,} | {name} | {m['seconds']:.3f} | {m['peak_bytes'] / 2**20:,.0f} MiB "
                f"| {speed} | {memory} |"
            )
        print(*rows[-len(measured) :], note, sep="\n", file=sys.stderr, flush=True)
    rows += ["", "| classes | max abs diff chunked vs full: loss | grad features | grad weight | grad bias |"]
    rows.append("|---:|---:|---:|---:|---:|")
    for num_classes in [c for c in args.classes if c <= 10**5]:
        d = _spawn("equality", "chunked", str(num_classes))
        rows.append(
            f"| {num_classes:,} | {d['loss']:.1e} | {d['grad_features']:.1e} "
            f"| {d['grad_weight']:.1e} | {d['grad_bias']:.1e} |"
        )
    return "\n".join(rows)


def _fit_and_score(demo: Any, loss: str, *, epochs: int, time_budget: float | None) -> dict[str, Any]:
    import labelwise
    from labelwise.train import TrainConfig

    config = TrainConfig(epochs=epochs, time_budget=time_budget, loss=loss, balance="none")  # type: ignore[arg-type]
    start = time.perf_counter()
    clf = labelwise.fit(demo.train, target=demo.target, config=config, progress=False)
    seconds = time.perf_counter() - start
    metrics = clf.evaluate(demo.test, target=demo.target)
    history = clf.info["training"]["history"]
    return {"loss": loss, "fit_s": seconds, "epochs": len(history), "stopped": clf.info["training"]["stopped"]} | {
        key: metrics.get(key, metrics.get("accuracy" if key == "precision@1" else key, float("nan")))
        for key in ("precision@1", "precision@5", "macro_recall@1/head", "macro_recall@1/torso", "macro_recall@1/tail")
    }


def run_budget(args: argparse.Namespace) -> str:
    """P@1 on `labelwise demo extreme`'s test rows after the same wall-clock budget for each loss.

    The sampled softmax trains `--epochs` epochs (the demo's setting); its training time becomes the budget the
    full and the chunked softmax get (`--time-budget`), with their one-cycle schedule spanning one epoch, which
    is as far as they get in that time. Every run then ranks validation and test rows exactly (chunked top-k).
    """
    import tempfile

    from labelwise.datasets import make_demo

    torch.set_num_threads(THREADS)
    demo = make_demo("extreme", args.demo_dir or tempfile.mkdtemp(prefix="labelwise-extreme-"))
    results = [_fit_and_score(demo, "sampled", epochs=args.epochs, time_budget=None)]
    budget = results[0]["fit_s"]
    print(f"sampled: {results[0]}; budget for the others: {budget:.0f} s", file=sys.stderr, flush=True)
    for loss in ("chunked", "full"):
        results.append(_fit_and_score(demo, loss, epochs=1, time_budget=budget))
        print(f"{loss}: {results[-1]}", file=sys.stderr, flush=True)
    rows = [
        f"demo extreme (100,000 classes, 250,000 training rows), {THREADS} threads; budget = the sampled run's "
        f"fit time, {budget:.0f} s",
        "",
        "| loss | fit s (incl. validation) | epochs finished | stopped by | P@1 | P@5 | recall@1 head | torso | tail |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r['loss']} | {r['fit_s']:.0f} | {r['epochs']} | {r['stopped']} | {r['precision@1']:.3f} "
            f"| {r['precision@5']:.3f} | {r['macro_recall@1/head']:.3f} | {r['macro_recall@1/torso']:.3f} "
            f"| {r['macro_recall@1/tail']:.3f} |"
        )
    return "\n".join(rows)


PARTS: dict[str, Callable[[argparse.Namespace], str]] = {"steps": run_steps, "budget": run_budget, "table": run_table}


def main(argv: list[str] | None = None) -> None:
    """Run the chosen parts and print their markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=sorted(PARTS), nargs="+", default=["steps"])
    parser.add_argument("--classes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--epochs", type=int, default=3, help="--part budget: epochs of the sampled run")
    parser.add_argument("--demo-dir", default=None, help="--part budget/table: where the data is (or goes)")
    parser.add_argument("--bare-epochs", type=int, default=12, help="--part table: epochs of the bare loop")
    parser.add_argument("--child", nargs=3, metavar=("WHAT", "LOSS", "CLASSES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        what, name, num_classes = args.child
        result = _child(name, int(num_classes)) if what == "steps" else _equality(int(num_classes))
        print(json.dumps(result))
        return
    for part in args.part:
        print(PARTS[part](args))


if __name__ == "__main__":
    main()
