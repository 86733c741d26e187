"""Batch normalisation with statistics over the whole batch, all processes' parts together.

By default each process normalises its part of the batch with that part's own mean and variance
(as PyTorch's DistributedDataParallel does): nothing to communicate, but with N processes the
statistics come from B / N examples. :class:`SyncBatchNorm` computes them over all B examples, as
one process would, at the price of two small ``Allreduce`` calls forward and one backward per
layer. ``convert_sync_batchnorm(model)`` swaps it in for every BatchNorm of a model.
"""

from __future__ import annotations

import copy

from ..backend import xp
from ..function import Function
from ..nn import functional as F
from ..nn.layers import BatchNorm1d, check_input
from ..nn.module import Module
from ..tensor import as_array
from .mpi import init


class SyncBatchNormOp(Function):
    """y = weight x_hat + bias, x_hat normalised over every process's part of the batch.
    dx = weight / sqrt(var + eps) * (dy - (S1 + x_hat S2) / M_r)  (S1, S2 below).

    Batch norm over the union of every process's part of the batch (channel axis 1).
    Forward, with sums over all processes (M elements per channel in all, M_r here):
        mean = sum(x) / M,  var = sum((x - mean)^2) / M,  x_hat = (x - mean) / sqrt(var + eps),
        y = weight x_hat + bias.
    Backward, w_r = M_r / M (the weight the gradient average gives this process's gradients):
        S1 = sum_r w_r sum(dy),  S2 = sum_r w_r sum(dy x_hat),
        dx = weight / sqrt(var + eps) * (dy - (S1 + x_hat S2) / M_r),
        dweight = sum(dy x_hat),  dbias = sum(dy)   (this process's part; averaged later).
    Once gradients are averaged with weights w_r, every gradient is the one-process gradient of
    the mean loss over the whole batch; with one process this is :class:`BatchNorm` exactly.
    """

    def forward(self, x, weight, bias, comm=None, eps=1e-5, stats_out=None):
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        local_count = x.size // x.shape[1]
        sums = xp.concatenate([x.sum(axis=axes, dtype=xp.float64), [local_count]])
        comm.all_reduce(sums)
        count = sums[-1]
        mean = (sums[:-1] / count).astype(x.dtype).reshape(shape)
        centred = x - mean
        squares = (centred * centred).sum(axis=axes, dtype=xp.float64)
        var = (comm.all_reduce(squares) / count).astype(x.dtype).reshape(shape)
        inv_std = 1.0 / xp.sqrt(var + eps)
        x_hat = centred * inv_std
        if stats_out is not None:
            stats_out["mean"], stats_out["var"], stats_out["count"] = (
                mean.reshape(-1),
                var.reshape(-1),
                int(count),
            )
        scale = weight.reshape(shape) if weight is not None else None
        self.save(x_hat, inv_std, scale, axes, comm, local_count, local_count / count)
        y = x_hat * scale if scale is not None else x_hat.copy()
        if bias is not None:
            y += bias.reshape(shape)
        return y

    def backward(self, grad):
        x_hat, inv_std, scale, axes, comm, local_count, share = self.saved
        sum_grad = grad.sum(axis=axes)
        sum_grad_x_hat = (grad * x_hat).sum(axis=axes)
        both = xp.concatenate([sum_grad, sum_grad_x_hat]).astype(xp.float64) * share
        comm.all_reduce(both)
        channels = len(sum_grad)
        shape = (1, -1) + (1,) * (grad.ndim - 2)
        s1 = both[:channels].astype(grad.dtype).reshape(shape)
        s2 = both[channels:].astype(grad.dtype).reshape(shape)
        grad_x = None
        if self.needs_grad[0]:
            grad_x = (grad - (s1 + x_hat * s2) / local_count) * inv_std
            if scale is not None:
                grad_x *= scale
        return grad_x, sum_grad_x_hat, sum_grad


class SyncBatchNorm(BatchNorm1d):
    """BatchNorm whose training statistics span every process's part of the batch (channel axis
    1, any input of 2 or more dimensions), as ``torch.nn.SyncBatchNorm``. In evaluation, and on
    one process, it is an ordinary BatchNorm.

    Args:
        num_features, eps, momentum, affine, track_running_stats: as :class:`BatchNorm1d`.
        comm: the processes (default: :func:`chainrule.distributed.init`).

    Example:
        >>> model = convert_sync_batchnorm(model)   # every BatchNorm1d/2d becomes one
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        comm=None,
    ):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.comm = comm

    def check(self, x):
        check_input(self, x, 2, 1, self.num_features)

    def forward(self, x):
        self.check(x)
        comm = self.comm or init()
        tracking = self.training and self.track_running_stats
        if tracking:  # in place, so that a model sharing the buffers sees them too
            as_array(self.num_batches_tracked)[...] += 1
        if not self.training or comm.world_size == 1:
            running = (
                (self.running_mean, self.running_var) if self.track_running_stats else (None,) * 2
            )
            use_batch = self.training or not self.track_running_stats
            return F.batch_norm(
                x, *running, self.weight, self.bias, use_batch, self.momentum, self.eps
            )
        stats: dict = {}
        y = SyncBatchNormOp.apply(
            x, self.weight, self.bias, comm=comm, eps=self.eps, stats_out=stats
        )
        if tracking:
            mean, var, m = as_array(self.running_mean), as_array(self.running_var), self.momentum
            mean *= 1 - m
            mean += m * stats["mean"]
            var *= 1 - m
            var += m * stats["var"] * (stats["count"] / max(stats["count"] - 1, 1))
        return y


def convert_sync_batchnorm(module, comm=None):
    """A twin of ``module`` in which every BatchNorm1d/BatchNorm2d is a :class:`SyncBatchNorm`.

    The twin shares every parameter and buffer with ``module`` (nothing is copied), so training
    the twin trains ``module`` too; ``module`` itself is left as it was, with its plain layers,
    ready to be saved with ``cr.save``.
    """
    if isinstance(module, BatchNorm1d) and not isinstance(module, SyncBatchNorm):
        twin = SyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            comm,
        )
        twin.weight, twin.bias = module.weight, module.bias
        for name in module._buffer_names:
            twin.register_buffer(name, getattr(module, name))
        twin.train(module.training)
        return twin
    if not any(isinstance(m, BatchNorm1d) for m in module.modules()):
        return module
    twin = copy.copy(module)
    for name, value in vars(module).items():  # containers keep their layers in _layers, _items
        vars(twin)[name] = _converted(value, comm)
    return twin


def _converted(value, comm):
    if isinstance(value, (list, tuple)):
        return type(value)(_converted(v, comm) for v in value)
    if isinstance(value, dict):
        return {k: _converted(v, comm) for k, v in value.items()}
    return convert_sync_batchnorm(value, comm) if isinstance(value, Module) else value
