"""Convolution and pooling over NCHW images: the readable reference implementations.

im2col: every k x k window of the (padded) input becomes one column of a matrix, read through a
strided view and copied once; a convolution is then one matrix product with the filters. Its
backward pass is two more products, and col2im adds the window gradients back into place (one
vectorised addition per kernel offset, never a loop over pixels or examples).

The layers use the fast versions in :mod:`~chainrule.ops.conv_fast` and
:mod:`~chainrule.ops.pool_fast` (channels-last, in chunks on two threads); the tests hold those
equal to these, values and gradients, for every stride, padding, dilation and groups.
"""

from __future__ import annotations

from ..backend import as_strided, xp
from ..function import Function


def output_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def pad_spatial(x, padding, value=0.0):
    """Pad the last two axes by ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = padding
    if not (top or bottom or left or right):
        return x
    return xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def windows(x, kernel, stride, dilation, out_hw):
    """A strided view (N, C, Ho, Wo, kh, kw) of every window of x (N, C, H, W); no copy."""
    n, c = x.shape[:2]
    sn, sc, sh, sw = x.strides
    (kh, kw), (st_h, st_w), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    return as_strided(x, (n, c, ho, wo, kh, kw), (sn, sc, sh * st_h, sw * st_w, sh * dh, sw * dw))


def col2im(cols, padded_shape, kernel, stride, dilation, out_hw):
    """The adjoint of :func:`windows`: add each window's values (N, C, kh, kw, Ho, Wo) back into
    an array of ``padded_shape``, summing where windows overlap."""
    out = xp.zeros(padded_shape, dtype=cols.dtype)
    (kh, kw), (st_h, st_w), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + st_h * (ho - 1) + 1, st_h)
            columns = slice(j * dw, j * dw + st_w * (wo - 1) + 1, st_w)
            out[:, :, rows, columns] += cols[:, :, i, j]
    return out


def unpad(x, padding):
    (top, bottom), (left, right) = padding
    return x[:, :, top : x.shape[2] - bottom, left : x.shape[3] - right]


class Conv2d(Function):
    """z[n, o] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, s*h + d*i, s*w + d*j]
    (per group of channels).
    dX = W^T dZ added back to the image (col2im),  dW = dZ X^T,  db = sum of dZ (see below).

    As matrices, per example and group, with X the im2col matrix (rows: the filter taps c, i, j;
    columns: output positions): Z = W X + b, so dW = sum over examples of dZ X^T, db = sum of dZ,
    and dX = W^T dZ, added back to the image by col2im.
    """

    def forward(
        self,
        x,
        weight,
        bias=None,
        stride=(1, 1),
        padding=((0, 0), (0, 0)),
        dilation=(1, 1),
        groups=1,
    ):
        n = x.shape[0]
        out_channels, c_per_group, kh, kw = weight.shape
        ho = output_size(x.shape[2], kh, stride[0], sum(padding[0]), dilation[0])
        wo = output_size(x.shape[3], kw, stride[1], sum(padding[1]), dilation[1])
        w_mat = weight.reshape(groups, out_channels // groups, c_per_group * kh * kw)
        padded = pad_spatial(x, padding)
        win = windows(padded, (kh, kw), stride, dilation, (ho, wo))  # (N, C, Ho, Wo, kh, kw)
        cols = xp.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3))  # (N, C, kh, kw, Ho, Wo)
        cols = cols.reshape(n, groups, c_per_group * kh * kw, ho * wo)
        z = (w_mat @ cols).reshape(n, out_channels, ho, wo)
        if bias is not None:
            z += bias.reshape(1, -1, 1, 1)
        self.save(cols, w_mat, padded.shape, (kh, kw), stride, dilation, (ho, wo), padding)
        return z

    def backward(self, grad):
        cols, w_mat, padded_shape, kernel, stride, dilation, out_hw, padding = self.saved
        n, out_channels = grad.shape[:2]
        groups, per_group = w_mat.shape[:2]
        g = grad.reshape(n, groups, per_group, -1)  # (N, groups, out per group, Ho*Wo)
        grad_w = grad_b = grad_x = None
        if self.needs_grad[1]:
            grad_w = (g @ xp.swapaxes(cols, -1, -2)).sum(axis=0).reshape(out_channels, -1, *kernel)
        if len(self.needs_grad) > 2 and self.needs_grad[2]:
            grad_b = grad.sum(axis=(0, 2, 3))
        if self.needs_grad[0]:
            grad_cols = (xp.swapaxes(w_mat, -1, -2) @ g).reshape(n, -1, *kernel, *out_hw)
            grad_x = unpad(
                col2im(grad_cols, padded_shape, kernel, stride, dilation, out_hw), padding
            )
        return grad_x, grad_w, grad_b


class MaxPool2d(Function):
    """z = the largest value of each window.   dz/dx = 1 at the window's (first) maximum, else 0.

    Computed offset by offset: for each of the kh*kw positions in the window, a strided view of
    the input holding that position of every window; no copy of the windows is made.
    """

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0))):
        n, c, h, w = x.shape
        ho = output_size(h, kernel[0], stride[0], sum(padding[0]))
        wo = output_size(w, kernel[1], stride[1], sum(padding[1]))
        padded = pad_spatial(x, padding, value=-xp.inf)
        win = windows(padded, kernel, stride, (1, 1), (ho, wo))
        offsets = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]
        z = win[..., 0, 0].copy()
        for i, j in offsets[1:]:
            xp.maximum(z, win[..., i, j], out=z)
        # the offset of each window's first maximum (ties go to the first, as in PyTorch)
        best = xp.zeros(z.shape, dtype=xp.int8 if len(offsets) < 128 else xp.int64)
        taken = xp.zeros(z.shape, dtype=bool)
        for k, (i, j) in enumerate(offsets):
            hit = win[..., i, j] == z
            hit &= ~taken
            taken |= hit
            best += hit.astype(best.dtype) * best.dtype.type(k)
        self.save(best, padded.shape, kernel, stride, (ho, wo), padding)
        return z

    def backward(self, grad):
        best, padded_shape, kernel, stride, out_hw, padding = self.saved
        n, c, ho, wo = grad.shape
        (kh, kw) = kernel
        if tuple(stride) == tuple(kernel) and padded_shape[2:] == (ho * kh, wo * kw):
            # the windows tile the image exactly: write each offset's share in place
            tiles = xp.empty((n, c, ho, kh, wo, kw), dtype=grad.dtype)
            for k in range(kh * kw):
                xp.multiply(grad, best == k, out=tiles[:, :, :, k // kw, :, k % kw])
            grad_x = tiles.reshape(padded_shape)
        else:
            cols = xp.empty((n, c, kh, kw, ho, wo), dtype=grad.dtype)
            for k in range(kh * kw):
                xp.multiply(grad, best == k, out=cols[:, :, k // kw, k % kw])
            grad_x = col2im(cols, padded_shape, kernel, stride, (1, 1), out_hw)
        return unpad(grad_x, padding)


class AvgPool2d(Function):
    """z = the mean of each k x k window (padding counts as zeros, as PyTorch's default).
    dz/dx = 1/(kh kw) for every x in the window."""

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0))):
        n, c, h, w = x.shape
        ho = output_size(h, kernel[0], stride[0], sum(padding[0]))
        wo = output_size(w, kernel[1], stride[1], sum(padding[1]))
        padded = pad_spatial(x, padding)
        z = windows(padded, kernel, stride, (1, 1), (ho, wo)).mean(axis=(4, 5), dtype=x.dtype)
        self.save(padded.shape, kernel, stride, (ho, wo), padding)
        return z

    def backward(self, grad):
        padded_shape, kernel, stride, out_hw, padding = self.saved
        share = grad / (kernel[0] * kernel[1])
        n, c, ho, wo = grad.shape
        cols = xp.broadcast_to(share[:, :, None, None], (n, c, *kernel, ho, wo))
        return unpad(col2im(cols, padded_shape, kernel, stride, (1, 1), out_hw), padding)


def adaptive_pool_matrix(size: int, out: int, dtype):
    """(out, size) averaging matrix with PyTorch's bins [floor(i size/out), ceil((i+1) size/out))."""
    m = xp.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, start:end] = 1.0 / (end - start)
    return m


class AdaptiveAvgPool2d(Function):
    """z = P_h x P_w^T: each output cell is the mean of its bin of rows and columns.
    dx = P_h^T dz P_w."""

    def forward(self, x, output_size=(1, 1)):
        p_h = adaptive_pool_matrix(x.shape[2], output_size[0], x.dtype)
        p_w = adaptive_pool_matrix(x.shape[3], output_size[1], x.dtype)
        self.save(p_h, p_w)
        return p_h @ x @ p_w.T

    def backward(self, grad):
        p_h, p_w = self.saved
        return p_h.T @ grad @ p_w
