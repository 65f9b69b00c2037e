"""What the rules read: the loss as check understands it, and one traced forward pass."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from labelwise.checking._report import Severity
from labelwise.errors import ConfigError
from labelwise.losses import TaskLoss
from labelwise.task import HeadType, Label, Task, TaskKind

ENCODE = "`task.encode(labels)`"
MIN_VALUES = 16  # fewer raw scores than this can all fall in [0, 1] by chance
_TORCH_LOSSES = {nn.CrossEntropyLoss: "ce", nn.NLLLoss: "nll", nn.BCEWithLogitsLoss: "bce_logits", nn.BCELoss: "bce"}
_FUNCTIONAL_LOSSES: dict[object, str] = {
    F.cross_entropy: "ce",
    F.nll_loss: "nll",
    F.binary_cross_entropy_with_logits: "bce_logits",
    F.binary_cross_entropy: "bce",
}
_TORCH_NAMES = {"ce": "CrossEntropyLoss", "nll": "NLLLoss", "bce_logits": "BCEWithLogitsLoss", "bce": "BCELoss"}
# torch function names (torch.softmax, F.softmax, Tensor.softmax, nn.Softmax's call all end in one of these).
_ACTIVATIONS = {"softmax": "softmax", "log_softmax": "log_softmax", "sigmoid": "sigmoid", "special_expit": "sigmoid"}
# Ops that move values without computing new ones: the op before them still produced the outputs.
_SHAPE_OPS = frozenset(
    "squeeze unsqueeze view view_as reshape reshape_as flatten __getitem__ contiguous float to clone detach".split()
)


@dataclass(frozen=True)
class _Loss:
    family: str | None  # "ce", "nll", "bce_logits", "bce"; None for a loss check does not know
    name: str  # as the user wrote it, in backticks: "`nn.CrossEntropyLoss`", "`F.cross_entropy`", ...
    weighted: bool = False
    ignore_index: int | None = None
    task: Task | None = None  # labelwise's TaskLoss knows its Task

    @property
    def indices(self) -> bool:
        """Targets are class indices (cross-entropy, NLL, a one-vs-rest Task)."""
        return self.family in ("ce", "nll") or (self.task is not None and self.task.head is HeadType.ONE_VS_REST)

    @property
    def elementwise(self) -> bool:
        """Targets are 0/1 values, one per output (BCE)."""
        return self.family in ("bce_logits", "bce") and not self.indices

    @property
    def torch_name(self) -> str:
        return _TORCH_NAMES[self.family] if self.family else self.name


@dataclass
class _Wiring:
    """One batch as the loss receives it, and what check knows about the classes."""

    outputs: torch.Tensor  # detached float copy on the CPU, trailing size-1 dimensions flattened
    raw_shape: tuple[int, ...]
    targets: torch.Tensor  # on the CPU
    loss: _Loss
    classes: tuple[Label, ...] | None
    num_classes: int | None
    source: str  # where num_classes comes from, for the messages
    kind: TaskKind | None
    last_module: tuple[str, nn.Module] | None  # the last leaf module that ran
    last_op: str | None  # "softmax", "log_softmax", "sigmoid" when that op produced the outputs
    half_precision: bool = False
    fired: dict[str, Severity] = field(default_factory=dict)
    loss_value: float | None = None
    loss_error: Exception | None = None

    @property
    def n(self) -> int:
        return int(self.outputs.shape[0]) if self.outputs.ndim else 1

    @property
    def width(self) -> int:
        return int(self.outputs.shape[1]) if self.outputs.ndim >= 2 else 1

    @property
    def aligned(self) -> bool:
        """One target row per output row, so the target rules can compare them."""
        return self.targets.ndim >= 1 and int(self.targets.shape[0]) == self.n

    @property
    def has_error(self) -> bool:
        return "error" in self.fired.values()

    @functools.cached_property
    def signature(self) -> str | None:
        """What the output values look like: "softmax", "log_softmax", "sigmoid" (all in [0, 1]) or None."""
        x = self.outputs
        if x.numel() == 0 or not bool(torch.isfinite(x).all()):
            return None
        tol = 5e-2 if self.half_precision else 1e-4  # float16/bfloat16 keep ~3 digits of each probability
        in_unit = bool(x.min() >= 0) and bool(x.max() <= 1)
        if x.ndim >= 2 and x.shape[1] >= 2:
            if in_unit and bool(((x.sum(1) - 1).abs() <= tol).all()):
                return "softmax"
            if bool(x.max() <= 0) and bool((x.logsumexp(1).abs() <= tol).all()):
                return "log_softmax"
        return "sigmoid" if in_unit else None

    def name(self, index: int) -> str:
        """Class ``index`` as the user named it."""
        return repr(self.classes[index]) if self.classes and index < len(self.classes) else str(index)


def read_loss(loss_fn: object) -> _Loss:
    """What check knows about ``loss_fn``: its family, weights and ignore_index."""
    if isinstance(loss_fn, TaskLoss):
        task = loss_fn.task
        weighted = loss_fn.class_weight is not None or loss_fn.pos_weight is not None
        family = "ce" if task.activation == "softmax" else "bce_logits"
        return _Loss(family, f"labelwise's `TaskLoss` ({task.loss_name})", weighted=weighted, task=task)
    for cls, family in _TORCH_LOSSES.items():
        if isinstance(loss_fn, cls):
            weighted = any(getattr(loss_fn, w, None) is not None for w in ("weight", "pos_weight"))
            ignore = getattr(loss_fn, "ignore_index", None)
            return _Loss(family, f"`nn.{cls.__name__}`", weighted=weighted, ignore_index=ignore)
    func, keywords = (loss_fn.func, loss_fn.keywords) if isinstance(loss_fn, functools.partial) else (loss_fn, {})
    known = _FUNCTIONAL_LOSSES.get(func)
    if known is None:
        return _Loss(None, f"`{getattr(loss_fn, '__name__', type(loss_fn).__name__)}`")
    family = known
    weighted = any(keywords.get(w) is not None for w in ("weight", "pos_weight"))
    ignore = int(keywords.get("ignore_index", -100)) if family in ("ce", "nll") else None
    return _Loss(family, f"`F.{getattr(func, '__name__', family)}`", weighted=weighted, ignore_index=ignore)


def read_classes(
    classes: int | Sequence[Label] | None, task: Task | None, *, explicit: bool
) -> tuple[tuple[Label, ...] | None, int | None, str, TaskKind | None]:
    """Class names, count, where they come from, and the kind, from ``classes=`` or a Task."""
    if classes is not None and task is not None:
        given = "task=" if explicit else "a TaskLoss, whose Task"
        raise ConfigError(f"pass classes= or {given}, not both: a Task already names its classes.")
    if task is not None:
        return task.classes, task.num_classes, "`task=`" if explicit else "the TaskLoss's Task", task.kind
    if classes is None:
        return None, None, "", None
    if isinstance(classes, bool | str) or not isinstance(classes, int | Sequence):
        raise ConfigError(f"classes={classes!r}; expected the number of classes or a sequence of class names.")
    names = None if isinstance(classes, int) else tuple(classes)
    count = classes if isinstance(classes, int) else len(classes)
    if count < 2:
        raise ConfigError(f"classes={classes!r} holds {count} class(es); a classifier needs at least two.")
    return names, count, "`classes=`", None


def logits_of(raw: object) -> torch.Tensor:
    """The tensor the loss receives: the output itself, or its ``logits`` (Hugging Face outputs, dicts)."""
    for candidate in (raw, getattr(raw, "logits", None), raw.get("logits") if isinstance(raw, dict) else None):
        if isinstance(candidate, torch.Tensor):
            return candidate
    raise ConfigError(
        f"the model returned a {type(raw).__name__}, expected the tensor the loss receives; "
        "pass a model that returns it, for example `lambda x: model(x)[0]`."
    )


def flat(outputs: torch.Tensor) -> torch.Tensor:
    """(N, C, 1, 1) -> (N, C): a conv head's outputs, flattened as the user must (shape_mismatch says so)."""
    return outputs.flatten(1) if outputs.ndim > 2 and math.prod(outputs.shape[2:]) == 1 else outputs


def describe(value: object) -> str:
    """``(32, 4) float32`` for a tensor, the type's name otherwise."""
    if isinstance(value, torch.Tensor):
        return f"{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    return type(value).__name__


class _Trace(TorchFunctionMode):
    """Record whether an activation produced the outputs, and the last leaf module that ran.

    A torch function mode sees every torch call in ``forward``, functional ones (``torch.softmax(x, 1)``,
    ``x.sigmoid()``) included, which forward hooks on modules cannot.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_op: str | None = None
        self.last_module: tuple[str, nn.Module] | None = None

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if isinstance(result, torch.Tensor) and name not in _SHAPE_OPS:
            self.last_op = _ACTIVATIONS.get(name)
        return result

    def hook(self, name: str) -> Callable[[nn.Module, object, object], None]:
        def record(module: nn.Module, args: object, output: object) -> None:
            self.last_module = (name, module)

        return record


def forward(model: Callable[[Any], object], inputs: object) -> tuple[object, _Trace]:
    """Run ``model(inputs)`` once, traced, leaving the model as it was (see `_untouched`).

    A model that fails under the trace (a compiled or scripted one may refuse a torch function mode) runs once
    more without it; the activation rules then judge by the output values alone.
    """
    trace = _Trace()
    with _untouched(model) as leaves, torch.no_grad():
        handles = [module.register_forward_hook(trace.hook(name)) for name, module in leaves]
        try:
            with trace:
                return model(inputs), trace
        except Exception:  # retried untraced below; a real error raises again there
            pass
        finally:
            for handle in handles:
                handle.remove()
        return model(inputs), _Trace()


@contextmanager
def _untouched(model: object) -> Iterator[list[tuple[str, nn.Module]]]:
    """Training mode for the pass, then every module's mode, every buffer and the RNGs as they were.

    Training mode because that is what the loss sees: a model that applies softmax only in eval mode is wired
    right. Buffers (BatchNorm statistics) and the RNGs (dropout) are restored so a seeded run is the same with
    or without the check. Yields the leaf modules to hook.
    """
    if not isinstance(model, nn.Module):
        yield []
        return
    modes = [(module, module.training) for module in model.modules()]
    buffers = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=cuda):
        model.train()
        try:
            # ScriptModules refuse Python hooks; their outputs are still judged by value.
            scripted = torch.jit.ScriptModule
            yield [(n, m) for n, m in model.named_modules() if not any(m.children()) and not isinstance(m, scripted)]
        finally:
            for module, training in modes:
                module.training = training
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)


def zero_one(t: torch.Tensor) -> bool:
    """Every value is 0 or 1."""
    return bool(((t == 0) | (t == 1)).all())


def shape_of(t: torch.Tensor | tuple[int, ...]) -> str:
    """``(32, 4)``."""
    return str(tuple(t.shape) if isinstance(t, torch.Tensor) else t)


def dtype_name(t: torch.Tensor) -> str:
    """``float32``."""
    return str(t.dtype).removeprefix("torch.")


def module_path(name: str) -> str:
    """How the user reaches a submodule: ``"head.2"`` -> ``model.head[2]``."""
    parts = [part for part in name.split(".") if part and part != "_orig_mod"]  # torch.compile's wrapper
    return "model" + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in parts)
