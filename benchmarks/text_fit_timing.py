"""Issue 15's time bars for text: ``labelwise.fit`` on 5,000 documents of a few hundred characters (bar: 60 s
wall on 2 cores) and predicting 1,000 documents in the process (bar: 3 s), and where the fit's time goes.

Data: recipe-meal's 4,819 recipes (4 meals, median ~555 characters) plus the 181 first fortunes of 200+
characters (class ``fortune``): 5,000 unique documents. Zero-config ``labelwise.fit(frame, target="label")``
(labelwise splits off its own validation rows). Torch's and BLAS's default threads (the machine's cores).

1. a plain timed fit (wall), then 1,000 documents predicted twice (the first call includes one-time costs);
2. the same fit under cProfile, its cumulative time split into: reading the frame and the task, featurizing
   (TF-IDF vocabulary + vectors), building the network, solving (the L-BFGS L2 path), calibration +
   threshold tuning + validation metrics. cProfile slows Python-heavy code, so read the shares, not the sums.

Wall seconds on a shared machine are noisy (other jobs take cores): the process's CPU seconds are printed
beside them (CPU seconds over 2 threads can exceed wall seconds; under contention wall exceeds CPU).

Usage: ``PYTHONPATH=src python benchmarks/text_fit_timing.py [--multilabel]`` (``--multilabel`` also times
recipe-allergens, 4,819 recipes, 10 sigmoid tags).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

import pandas as pd

import labelwise
from labelwise.datasets.text import fortunes, recipe_allergens, recipe_meal

# (label, file suffix, function name) -> the stage its cumulative time is counted in
STAGES = {
    "prepare: all (read frame, task, split, featurize, datasets)": ("pipeline/prepare.py", "prepare"),
    "  featurize: TF-IDF vocabulary fit (TextColumn.fit)": ("data/_text_column.py", "fit"),
    "  featurize: TF-IDF vectors (TextColumn.vectors)": ("data/_text_column.py", "vectors"),
    "  featurize: Inputs.encode (all columns)": ("inputs/_inputs.py", "encode"),
    "train: all (network, solve, record)": ("pipeline/training.py", "train"),
    "  solve: solve_linear (L-BFGS along the L2 path)": ("train/solve.py", "solve_linear"),
    "finish: all (calibration, thresholds, valid metrics)": ("pipeline/finish.py", "finish"),
    "  calibration: fit_temperature": ("labelwise/calibrate.py", "fit_temperature"),
    "  decision: tune_thresholds": ("decide/thresholds.py", "tune_thresholds"),
}


def documents() -> pd.DataFrame:
    recipes = recipe_meal()
    extra = fortunes()
    extra = extra[extra["text"].str.len() >= 200].head(5000 - len(recipes)).assign(label="fortune")
    return pd.concat([recipes, extra], ignore_index=True)


def breakdown(profile: cProfile.Profile) -> dict[str, float]:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    out = {}
    for label, (suffix, name) in STAGES.items():
        total = 0.0
        for (filename, _, function), (_, _, _, cumtime, _) in stats.items():
            if function == name and filename.replace(os.sep, "/").endswith(suffix):
                total += cumtime
        out[label] = round(total, 2)
    return out


def time_one(name: str, frame: pd.DataFrame, **options: object) -> None:
    lengths = frame["text"].str.len()
    print(f"\n## {name}: {len(frame)} documents, median {lengths.median():.0f} / mean {lengths.mean():.0f} chars")
    start, cpu = time.perf_counter(), time.process_time()
    clf = labelwise.fit(frame, target="label", progress=False, **options)
    fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    hist = clf.info["training"]
    steps = f"L2 path steps run: {hist['epochs_run']}, chosen step {hist['best_epoch']}"
    print(f"fit (plain): {fit_s:.1f} s wall, {fit_cpu:.1f} s CPU of this process ({steps})")
    new = frame[["text"]].sample(1000, random_state=1).reset_index(drop=True)
    for attempt in ("first", "second"):
        start, cpu = time.perf_counter(), time.process_time()
        clf.predict(new)
        wall, used = time.perf_counter() - start, time.process_time() - cpu
        print(f"predict 1,000 documents ({attempt} call): {wall:.2f} s wall, {used:.2f} s CPU")
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    labelwise.fit(frame, target="label", progress=False, **options)
    profile.disable()
    profiled_s = time.perf_counter() - start
    print(f"fit under cProfile: {profiled_s:.1f} s; cumulative seconds per stage (nested stages indented):")
    for label, seconds in breakdown(profile).items():
        print(f"  {label:<62} {seconds:7.2f}  ({100 * seconds / profiled_s:4.1f} %)")
    print("top 12 functions by own time:")
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--multilabel", action="store_true")
    args = parser.parse_args()
    import torch

    print(f"cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, labelwise {labelwise.__version__}")
    time_one("multiclass (recipe-meal + fortunes)", documents())
    if args.multilabel:
        time_one("multilabel (recipe-allergens)", recipe_allergens(), task="multilabel", label_sep="|")


if __name__ == "__main__":
    main()
