"""Exact softmax cross-entropy, log-sum-exp and top-k over a huge head, one class chunk at a time.

A linear head ``logits = features @ weight.T + bias`` over C = 10^6 classes and a batch of 512 is a
(512, 10^6) float32 tensor: 2 GB, and as much again for its gradient. Everything here walks the classes in
chunks of `DEFAULT_CHUNK` and keeps only (N,) or (N, k) running state, so peak memory is one (N, chunk) block
whatever C is. The results are exact (not approximations): the tests compare them with torch on full logits.

All arithmetic runs in float32 at least (float64 stays float64), so bf16/fp16 weights do not lose the
log-sum-exp to rounding; results come back in float32 (or float64).
"""

from __future__ import annotations

import torch

from labelwise.errors import ConfigError, DataError, LabelError

__all__ = ["DEFAULT_CHUNK", "chunked_cross_entropy", "chunked_logsumexp"]

# 8192 columns: an (N=512, 8192) float32 block is 16 MB, wide enough that the matmul runs at BLAS/GPU speed
# (throughput flattens out past a few thousand columns) and narrow enough that, at 10^6 classes, the
# per-chunk temporaries stay under 1% of the full (N, C) logits.
DEFAULT_CHUNK = 8192


def _acc_dtype(tensor: torch.Tensor) -> torch.dtype:
    # bf16/fp16 logits summed over 10^6 classes lose the log-sum-exp; float64 callers keep float64.
    return torch.promote_types(tensor.dtype, torch.float32)


def _check_head(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, chunk_size: int) -> None:
    if features.ndim != 2 or weight.ndim != 2 or features.shape[1] != weight.shape[1]:
        raise DataError(
            f"features {tuple(features.shape)} and weight {tuple(weight.shape)} do not form a linear head; "
            "expected features (N, H) and weight (C, H) as nn.Linear stores it. Pass the head's `.weight`, not its "
            "transpose."
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise DataError(
            f"bias has shape {tuple(bias.shape)}; expected ({weight.shape[0]},), one value per class of `weight`. "
            "Pass the head's `.bias` or None."
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size={chunk_size!r}; expected a positive int. Use the default {DEFAULT_CHUNK}.")


def _chunk_logits(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, start: int, stop: int
) -> torch.Tensor:
    """The (N, stop - start) logits of classes [start, stop), in the accumulation dtype."""
    acc = _acc_dtype(features)
    logits = features.to(acc) @ weight[start:stop].to(acc).T
    if bias is not None:
        logits += bias[start:stop].to(acc)
    return logits


def _chunks(num_classes: int, chunk_size: int) -> range:
    return range(0, num_classes, chunk_size)


def _check_targets(targets: torch.Tensor, *, num_rows: int, num_classes: int) -> None:
    if targets.ndim != 1 or targets.shape[0] != num_rows or targets.dtype != torch.long:
        raise LabelError(
            f"targets have shape {tuple(targets.shape)} and dtype {targets.dtype}; expected ({num_rows},) "
            "torch.long class indices, one per features row. Encode labels with `task.encode`."
        )
    if num_rows and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        bad = sorted(set(targets[(targets < 0) | (targets >= num_classes)].tolist()))[:5]
        raise LabelError(
            f"targets hold class indices {bad} outside [0, {num_classes}); expected indices of the "
            f"{num_classes} rows of `weight`. Check that the head has one row per class."
        )


def _weighted_row_sum(weight: torch.Tensor, class_weight: torch.Tensor, *, chunk_size: int) -> torch.Tensor:
    """(H,) ``class_weight @ weight`` in the accumulation dtype, without a full-precision copy of ``weight``."""
    total = torch.zeros(weight.shape[1], dtype=class_weight.dtype, device=weight.device)
    for start in _chunks(weight.shape[0], chunk_size):
        stop = min(start + chunk_size, weight.shape[0])
        total += class_weight[start:stop] @ weight[start:stop].to(class_weight.dtype)
    return total


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Mean weighted, label-smoothed cross-entropy; backward recomputes each chunk instead of storing (N, C).

    With p = softmax(z), smoothing e, class weights w (all 1 when None), W = sum(w) and D = sum_i w[y_i]:
    loss_i = (1 - e) w[y_i] (lse_i - z_i[y_i]) + (e / C) (W lse_i - sum_c w_c z_ic), loss = sum_i loss_i / D,
    exactly F.cross_entropy's definition; dloss/dz_ic = a_i p_ic - e w_c / (C D) - (1 - e) w[y_i] [c = y_i] / D
    with a_i = ((1 - e) w[y_i] + e W / C) / D. The sum over c of w_c z_ic is (w @ weight) . f_i + w . bias,
    which needs no chunking at all.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        features: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        class_weight: torch.Tensor,
        label_smoothing: float,
        chunk_size: int,
    ) -> torch.Tensor:
        acc = _acc_dtype(features)
        num_classes = weight.shape[0]
        lse = _logsumexp_rows(features, weight, bias, chunk_size=chunk_size)
        f = features.to(acc)
        z_target = (f * weight.index_select(0, targets).to(acc)).sum(1)
        if bias is not None:
            z_target = z_target + bias.index_select(0, targets).to(acc)
        w_target = class_weight.index_select(0, targets)
        denom = w_target.sum()
        loss = ((1.0 - label_smoothing) * w_target * (lse - z_target)).sum()
        if label_smoothing:
            z_weighted = f @ _weighted_row_sum(weight, class_weight, chunk_size=chunk_size)
            if bias is not None:
                z_weighted = z_weighted + class_weight @ bias.to(acc)
            loss = loss + (label_smoothing / num_classes) * (class_weight.sum() * lse - z_weighted).sum()
        # save_for_backward takes tensors only; an empty one stands for "no bias".
        ctx.save_for_backward(
            features, weight, weight.new_empty(0) if bias is None else bias, targets, class_weight, lse
        )
        ctx.has_bias = bias is not None  # type: ignore[attr-defined]
        ctx.label_smoothing = label_smoothing  # type: ignore[attr-defined]
        ctx.chunk_size = chunk_size  # type: ignore[attr-defined]
        return loss / denom

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_loss: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        features, weight, bias, targets, class_weight, lse = ctx.saved_tensors  # type: ignore[attr-defined]
        bias = bias if ctx.has_bias else None  # type: ignore[attr-defined]
        smooth: float = ctx.label_smoothing  # type: ignore[attr-defined]
        acc, num_classes = lse.dtype, weight.shape[0]
        f = features.to(acc)
        w_target = class_weight.index_select(0, targets)
        denom = w_target.sum()
        scale = ((1.0 - smooth) * w_target + smooth * class_weight.sum() / num_classes) / denom * grad_loss
        onehot_scale = (1.0 - smooth) * w_target / denom * grad_loss
        grad_f = torch.zeros_like(f)
        # In the weights' own dtype: a float32 copy of a bf16 (C, H) gradient would double its memory.
        grad_w = torch.empty_like(weight)
        grad_b = torch.empty(num_classes, dtype=weight.dtype if bias is None else bias.dtype, device=weight.device)
        rows = torch.arange(targets.shape[0], device=targets.device)
        for start in _chunks(num_classes, ctx.chunk_size):  # type: ignore[attr-defined]
            stop = min(start + ctx.chunk_size, num_classes)  # type: ignore[attr-defined]
            # In place: each (N, chunk) temporary is one more block of the memory this function exists to save.
            grad_z = _chunk_logits(features, weight, bias, start, stop).sub_(lse[:, None]).exp_().mul_(scale[:, None])
            if smooth:
                grad_z -= (smooth / num_classes / denom * grad_loss) * class_weight[start:stop]
            inside = (targets >= start) & (targets < stop)
            grad_z[rows[inside], targets[inside] - start] -= onehot_scale[inside]
            grad_f += grad_z @ weight[start:stop].to(acc)
            grad_w[start:stop] = grad_z.T @ f  # copy_ casts to the weights' dtype
            grad_b[start:stop] = grad_z.sum(0)
        return (
            grad_f.to(features.dtype) if ctx.needs_input_grad[0] else None,  # type: ignore[attr-defined]
            grad_w if ctx.needs_input_grad[1] else None,  # type: ignore[attr-defined]
            grad_b if bias is not None and ctx.needs_input_grad[2] else None,  # type: ignore[attr-defined]
            None,
            None,
            None,
            None,
        )


def chunked_cross_entropy(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    class_weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``F.cross_entropy(features @ weight.T + bias, targets, ...)`` (mean) without the (N, C) logits.

    Forward runs an online log-sum-exp over class chunks; backward recomputes each chunk's logits, adds its
    share to the features' gradient and writes that chunk of the weight and bias gradients. Peak memory is
    O(N * chunk_size + N * H) on top of the weights and their gradients; a step costs 1.5-2x the full loss
    (the logits are computed twice; measured on CPU in benchmarks/huge_labels.py).

    Args:
        features: (N, H) float, the head's input.
        weight: (C, H) float, as `nn.Linear` stores it.
        bias: (C,) float, or None.
        targets: (N,) long class indices.
        chunk_size: classes per chunk.
        class_weight: (C,) float per-class weights, as ``F.cross_entropy(weight=...)``.
        label_smoothing: in [0, 1), as ``F.cross_entropy(label_smoothing=...)``.

    Returns:
        The scalar mean loss, in float32 (float64 for float64 inputs).

    Raises:
        DataError: features, weight and bias do not form a linear head.
        LabelError: targets are not (N,) long indices into the C classes.
        ConfigError: chunk_size, class_weight or label_smoothing out of range.

    Example:
        >>> import torch.nn.functional as F
        >>> g = torch.Generator().manual_seed(0)
        >>> x, w, b = torch.randn(4, 3, generator=g), torch.randn(10, 3, generator=g), torch.zeros(10)
        >>> y = torch.tensor([0, 9, 4, 4])
        >>> loss = chunked_cross_entropy(x, w, b, y, chunk_size=3)
        >>> torch.allclose(loss, F.cross_entropy(x @ w.T + b, y))
        True
    """
    _check_head(features, weight, bias, chunk_size=chunk_size)
    num_classes = weight.shape[0]
    _check_targets(targets, num_rows=features.shape[0], num_classes=num_classes)
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing={label_smoothing!r}; expected a float in [0, 1). Use 0.0 to turn it off.")
    acc = _acc_dtype(features)
    if class_weight is None:
        class_weight = torch.ones(num_classes, dtype=acc, device=weight.device)
    elif tuple(class_weight.shape) != (num_classes,):
        raise ConfigError(
            f"class_weight has shape {tuple(class_weight.shape)}; expected ({num_classes},), one weight per class. "
            "Pass None for unweighted classes."
        )
    result = _ChunkedCrossEntropy.apply(
        features, weight, bias, targets, class_weight.detach().to(acc), float(label_smoothing), chunk_size
    )
    return result  # type: ignore[no-any-return]


def _logsumexp_rows(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    chunk_size: int,
    temperatures: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N,) or, with temperatures (G,), (N, G) log-sum-exp over all classes; logaddexp keeps it stable."""
    shape = (features.shape[0],) if temperatures is None else (features.shape[0], temperatures.shape[0])
    total = torch.full(shape, -torch.inf, dtype=_acc_dtype(features), device=features.device)
    for start in _chunks(weight.shape[0], chunk_size):
        logits = _chunk_logits(features, weight, bias, start, min(start + chunk_size, weight.shape[0]))
        if temperatures is None:
            part = torch.logsumexp(logits, dim=1)
        else:
            part = torch.logsumexp(logits[:, None, :] / temperatures.to(logits.dtype)[None, :, None], dim=2)
        total = torch.logaddexp(total, part)
    return total


@torch.no_grad()
def chunked_logsumexp(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    *,
    temperatures: torch.Tensor | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Log-sum-exp of the logits over all classes, optionally at several temperatures at once.

    Temperature scaling on a huge head needs the validation NLL at many temperatures; this evaluates all of
    them in one pass over the weights. No gradient flows (it runs under `torch.no_grad`). With G temperatures
    one chunk's temporaries are (N, G, chunk_size): lower `chunk_size` for large G.

    Args:
        features: (N, H) float.
        weight: (C, H) float.
        bias: (C,) float, or None.
        temperatures: (G,) positive floats; None means the plain logits.
        chunk_size: classes per chunk.

    Returns:
        (N,) float, or (N, G) float with ``out[:, g] = logsumexp(logits / temperatures[g])``.

    Raises:
        ConfigError: a temperature is not positive, or chunk_size is not a positive int.
        DataError: features, weight and bias do not form a linear head.

    Example:
        >>> x, w = torch.ones(2, 3), torch.zeros(5, 3)
        >>> chunked_logsumexp(x, w, None, chunk_size=2)  # log(5) for each row
        tensor([1.6094, 1.6094])
    """
    _check_head(features, weight, bias, chunk_size=chunk_size)
    if temperatures is not None and (temperatures.ndim != 1 or not bool((temperatures > 0).all())):
        raise ConfigError(
            f"temperatures {temperatures.tolist()!r}; expected a 1-D tensor of positive floats. "
            "Pass e.g. torch.tensor([0.5, 1.0, 2.0])."
        )
    return _logsumexp_rows(features, weight, bias, chunk_size=chunk_size, temperatures=temperatures)
