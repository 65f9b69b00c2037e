"""Training on several processes, GPUs and machines through Lightning: the checks and the decisions labelwise makes.

``TrainConfig(devices=N, num_nodes=M, strategy=..., precision=...)`` (CLI ``--devices --num-nodes --strategy
--precision``) hands these to ``lightning.Trainer``; Lightning launches and connects the processes. What labelwise
adds, so that N processes train the model one process would:

- ``batch_size`` stays the rows of one optimizer step across all processes: every process takes its own equal
  slice (``batch_size / N`` rows, `EpochBatches` with ``num_replicas``) of each batch of the epoch's shared seeded
  permutation, and DDP averages the gradients. So every process takes the same number of steps (an unequal count
  hangs DDP), the epoch sees each row once, and the auto batch size, epochs and schedule are those of one process.
  Results differ from one process only by float rounding, BatchNorm statistics taken per process, and unequal
  slices when ``batch_size`` is not a multiple of N.
- Validation rows are sliced the same way; the loss sums and row counts are all-reduced, so ``val_loss`` (early
  stopping, the checkpoint monitor, ``history``) is the mean over all validation rows on every process, and the
  training guards add their counts up across processes before deciding.
- After training, global rank 0 scores the best weights on all validation rows, in order, on its own (the rows are
  in memory), and calibration, thresholds and metrics use those logits; it alone writes ``RUN/`` (checkpoints, logs
  and the artifact, through the same atomic staging). The other ranks write nothing: they keep the last weights,
  return, and the CLI exits 0 on them without printing.
- A sampled loss draws its negatives per rank: each rank seeds its generator with ``seed + global_rank``.

Launching: the ``labelwise train`` CLI (Lightning's DDP re-runs the command line for ranks > 0), ``torchrun`` or
SLURM ``srun`` (every process runs the command itself; Lightning reads their environment). ``labelwise.fit`` called
from a notebook or a script run by ``python -c`` cannot be re-run that way: use the CLI, or a script under torchrun.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Protocol

import torch

from labelwise.errors import ConfigError
from labelwise.train._choices import PRECISIONS, STRATEGIES

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "ScaleOut",
    "average_buffers",
    "check_rows_per_process",
    "check_scale_out",
    "check_scale_out_values",
    "is_distributed",
    "is_global_zero",
    "rank_slice_size",
    "reduce_sum",
    "trainer_options",
    "world_size",
]

# Lightning's names for float16 / bfloat16 autocast that need the GPU (FSDP shards parameters over NCCL).
_GPU_ONLY_STRATEGIES = ("fsdp",)
_GPU_ONLY_PRECISIONS = ("16-mixed",)


class ScaleOut(Protocol):
    """The fields of a `TrainConfig` that say where and on how many processes training runs.

    A protocol rather than the class: `labelwise.train.config` imports this module to check these fields.
    """

    @property
    def accelerator(self) -> str: ...

    @property
    def devices(self) -> int | str: ...

    @property
    def num_nodes(self) -> int: ...

    @property
    def strategy(self) -> str: ...

    @property
    def precision(self) -> str: ...


def check_scale_out_values(config: ScaleOut) -> None:
    """Check the types and values of ``devices``, ``num_nodes``, ``strategy`` and ``precision`` of a TrainConfig.

    Raises:
        ConfigError: a value outside its range, naming the field and what it accepts.

    Example:
        >>> from labelwise.train import TrainConfig
        >>> TrainConfig(devices=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        labelwise.errors.ConfigError: devices=0; expected an int >= 1 or 'auto' ...
    """
    devices = config.devices
    if devices != "auto" and (not isinstance(devices, int) or isinstance(devices, bool) or devices < 1):
        raise ConfigError(
            f"devices={devices!r}; expected an int >= 1 or 'auto' (every visible GPU, else one CPU process), "
            "e.g. --devices 2."
        )
    nodes = config.num_nodes
    if not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1:
        raise ConfigError(f"num_nodes={nodes!r}; expected an int >= 1 (the machines taking part), e.g. --num-nodes 2.")
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"strategy={config.strategy!r}; expected one of {', '.join(map(repr, STRATEGIES))}.")
    if config.precision not in PRECISIONS:
        raise ConfigError(
            f"precision={config.precision!r}; expected one of {', '.join(map(repr, PRECISIONS))} "
            "(bf16-mixed for bfloat16 autocast on CPUs and recent GPUs)."
        )


def check_scale_out(config: ScaleOut) -> None:
    """Refuse, before any work, what this machine cannot run: more devices than exist, a strategy or precision
    the accelerator lacks, several nodes without a cluster environment to connect them.

    More CPU processes than ``os.cpu_count()`` are refused: each needs a core, and oversubscribed DDP runs slower
    than one process.

    Raises:
        ConfigError: one line saying what was asked, what exists, and the flag to change.

    Example:
        >>> from labelwise.train import TrainConfig
        >>> check_scale_out(TrainConfig(accelerator="cpu", devices=100_000))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        labelwise.errors.ConfigError: --devices 100000 asks for 100000 CPU processes, but this machine has ...
    """
    accelerator = _accelerator(config.accelerator)
    available = _available(accelerator)
    if isinstance(config.devices, int) and available is not None and config.devices > available:
        what = "CPU processes" if accelerator == "cpu" else f"{accelerator.upper()} devices"
        raise ConfigError(
            f"--devices {config.devices} asks for {config.devices} {what}, but this machine has {available} "
            f"({_counted(accelerator)}). Pass --devices {available} or fewer (devices={available})."
        )
    if config.strategy in _GPU_ONLY_STRATEGIES and accelerator != "gpu":
        raise ConfigError(
            f"--strategy {config.strategy} needs CUDA GPUs (Lightning's FSDP runs on them only); the accelerator "
            f"here is {accelerator!r}. Use --strategy ddp (or auto) on {accelerator}."
        )
    if config.precision in _GPU_ONLY_PRECISIONS and accelerator != "gpu":
        raise ConfigError(
            f"--precision {config.precision} needs a CUDA GPU (float16 autocast with loss scaling); the accelerator "
            f"here is {accelerator!r}. Use --precision bf16-mixed or 32 on {accelerator}."
        )
    if world_size(config) > 1 and not _can_relaunch():
        raise ConfigError(
            f"--devices {config.devices} from a notebook or `python -c`: Lightning's DDP starts the other processes "
            "by running this command line again, and this one cannot be. Run `labelwise train ... --devices N`, or "
            "your script under `torchrun --nproc-per-node N script.py`; or use devices=1 here."
        )
    if config.num_nodes > 1 and not _cluster_detected():
        raise ConfigError(
            f"--num-nodes {config.num_nodes} but no cluster environment connects the machines (no torchrun, SLURM "
            "or LSF variables, and no MASTER_ADDR + NODE_RANK): the processes would wait for each other forever. "
            "Launch with `torchrun --nnodes M --nproc-per-node N ...`, `srun labelwise train ...` under SLURM, or "
            "set MASTER_ADDR, MASTER_PORT and NODE_RANK on every machine; or drop --num-nodes."
        )


def world_size(config: ScaleOut) -> int:
    """Processes training in all: devices per node (``"auto"``: the visible GPUs, else 1) times nodes.

    Example:
        >>> from labelwise.train import TrainConfig
        >>> world_size(TrainConfig(accelerator="cpu", devices=2, num_nodes=3))
        6
    """
    devices = config.devices
    if devices == "auto":
        accelerator = _accelerator(config.accelerator)
        devices = torch.cuda.device_count() if accelerator == "gpu" else 1
    return int(devices) * int(config.num_nodes)


def trainer_options(config: ScaleOut, *, own_sampler: bool) -> dict[str, Any]:
    """The ``lightning.Trainer`` keywords for ``config``'s accelerator, devices, nodes, strategy and precision.

    Args:
        config: the TrainConfig.
        own_sampler: the loaders slice their batches per rank themselves (`EpochBatches` with ``num_replicas``);
            Lightning's DistributedSampler would then cut our grouped index tensors a second time, so it is off.

    Example:
        >>> from labelwise.train import TrainConfig
        >>> trainer_options(TrainConfig(accelerator="cpu"), own_sampler=True)["devices"]
        1
    """
    options: dict[str, Any] = {
        "accelerator": config.accelerator,
        "devices": config.devices,
        "num_nodes": config.num_nodes,
        "precision": config.precision,
        "strategy": config.strategy,
    }
    if own_sampler:
        options["use_distributed_sampler"] = False
    return options


def is_global_zero() -> bool:
    """Whether this process is global rank 0, the one that writes the run and prints.

    Once Lightning connects the processes, the process group says. Before then (while the data is read) the
    launcher's environment does: torchrun's ``RANK``, SLURM's ``SLURM_PROCID``, or Lightning's own re-launch of the
    command line (``NODE_RANK``, and ``LOCAL_RANK`` in the processes it starts; a node's first process has none).

    Example:
        >>> is_global_zero()
        True
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank()) == 0
    env = os.environ
    for key in ("RANK", "SLURM_PROCID"):
        if env.get(key, "").strip().isdigit():
            return int(env[key]) == 0
    ranks = (env.get("NODE_RANK") or env.get("GROUP_RANK") or "0", env.get("LOCAL_RANK") or "0")
    return all(not rank.strip().isdigit() or int(rank) == 0 for rank in ranks)


def check_rows_per_process(*, batch_size: int, num_valid: int, num_replicas: int) -> None:
    """Refuse a batch too small to give every process 2 rows a step (BatchNorm trains on no fewer), or fewer
    validation rows than processes.

    Raises:
        ConfigError: naming the sizes and the flag to change.

    Example:
        >>> check_rows_per_process(batch_size=64, num_valid=100, num_replicas=2)
    """
    if num_replicas > 1 and batch_size < 2 * num_replicas:
        raise ConfigError(
            f"batch_size={batch_size} rows per step over {num_replicas} processes leaves some fewer than 2 rows each "
            f"(each process takes an equal slice of every batch). Pass --batch-size {2 * num_replicas} or more, "
            "or fewer --devices / --num-nodes."
        )
    if num_valid < num_replicas:
        raise ConfigError(
            f"{num_valid} validation rows cannot be shared by {num_replicas} processes (each validates a slice). "
            "Use more validation rows, or fewer --devices / --num-nodes."
        )


def rank_slice_size(batch_size: int, *, num_replicas: int, rank: int) -> int:
    """Rows of a ``batch_size`` batch that ``rank`` takes: ``torch.tensor_split`` into ``num_replicas`` parts.

    Example:
        >>> [rank_slice_size(5, num_replicas=2, rank=r) for r in (0, 1)]
        [3, 2]
    """
    return batch_size // num_replicas + int(rank < batch_size % num_replicas)


def is_distributed() -> bool:
    """Whether this process trains together with others (a process group of more than one is connected).

    Example:
        >>> is_distributed()
        False
    """
    connected = torch.distributed.is_available() and torch.distributed.is_initialized()
    return connected and torch.distributed.get_world_size() > 1


def reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over all processes (itself when there is one): every process gets the same sums.

    Example:
        >>> reduce_sum(torch.tensor([1.0, 2.0]))
        tensor([1., 2.])
    """
    if not is_distributed():
        return values
    summed = values.clone()
    torch.distributed.all_reduce(summed, op=torch.distributed.ReduceOp.SUM)
    return summed


def average_buffers(network: torch.nn.Module) -> None:
    """Average the floating-point buffers (BatchNorm running statistics) of ``network`` over all processes.

    Each process updates them from its own slices of the batches, and DDP only copies rank 0's at the next forward;
    averaged (as timm's ``distribute_bn`` does), every process validates with the same statistics, taken from all
    rows, and the checkpoint holds those. Integer buffers (batch counters) agree already.

    Example:
        >>> bn = torch.nn.BatchNorm1d(2)
        >>> average_buffers(bn); bn.running_var
        tensor([1., 1.])
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    size = torch.distributed.get_world_size()
    for buffer in network.buffers():
        if buffer.is_floating_point():
            torch.distributed.all_reduce(buffer, op=torch.distributed.ReduceOp.SUM)
            buffer.div_(size)


def _accelerator(name: str) -> str:
    """``"gpu"``, ``"mps"``, ``"cpu"`` or another Lightning accelerator name, resolving ``"auto"`` as Lightning does."""
    if name == "auto":
        if torch.cuda.is_available():
            return "gpu"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    return "gpu" if name == "cuda" else name


def _available(accelerator: str) -> int | None:
    if accelerator == "gpu":
        return torch.cuda.device_count()
    if accelerator == "mps":
        return 1
    if accelerator == "cpu":
        return os.cpu_count() or 1
    return None  # TPUs and others: Lightning checks them


def _counted(accelerator: str) -> str:
    return {"gpu": "torch.cuda.device_count()", "cpu": "os.cpu_count()"}.get(accelerator, "one MPS device")


def _can_relaunch() -> bool:
    """Whether the processes are started already (torchrun, SLURM, Lightning's re-run) or this command can be re-run."""
    if "LOCAL_RANK" in os.environ or _cluster_detected():
        return True
    from lightning.fabric.utilities.imports import _IS_INTERACTIVE

    script = sys.argv[0] if sys.argv else ""
    return not _IS_INTERACTIVE and script not in ("", "-c") and os.path.exists(script)


def _cluster_detected() -> bool:
    from lightning.fabric.plugins.environments.lsf import LSFEnvironment
    from lightning.fabric.plugins.environments.slurm import SLURMEnvironment
    from lightning.fabric.plugins.environments.torchelastic import TorchElasticEnvironment

    manual = "MASTER_ADDR" in os.environ and "NODE_RANK" in os.environ
    return manual or TorchElasticEnvironment.detect() or SLURMEnvironment.detect() or LSFEnvironment.detect()
