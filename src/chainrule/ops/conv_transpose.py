"""Transposed convolution: the gradient of a convolution with respect to its input, run as a
layer of its own. It grows an image (a DCGAN generator's upsampling) where a strided convolution
shrinks one.

A convolution with filters W maps an image y to x = conv(y, W); its transpose maps x back to an
image the size of y. So the forward pass here is the input-gradient step of
:class:`chainrule.ops.conv.Conv2d` (col2im of W^T X) and the backward pass is that convolution's
forward pass (im2col of the gradient, times W), with the same helpers of :mod:`.conv`.
"""

from __future__ import annotations

from ..backend import xp
from ..function import Function
from .conv import col2im, pad_spatial, unpad, windows


def transposed_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, output_padding: int
) -> int:
    """The output length along one axis, as PyTorch's:
    (size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


class ConvTranspose2d(Function):
    """z[n, o, s*h + d*i - p, s*w + d*j - p] += sum_c x[n, c, h, w] W[c, o, i, j] (per group of
    channels), then z += b[o]: each input pixel stamps its filter, scaled, onto the output.
    dX = W C(dZ) (dZ convolved with W),  dW = X C(dZ)^T,  db = sums of dZ (see below).

    Weight (C_in, C_out/groups, kh, kw). Per group, with X the input as a matrix (rows: input
    channels; columns: every input position of every example) and C(.) the im2col matrix of an
    output-sized image (rows: taps (o, i, j); columns: input positions, as X's):
    Z = col2im(W^T X) + b,  dX = W C(dZ)  (dZ convolved with W),  dW = X C(dZ)^T,
    db = the sums of dZ over examples and positions. ``output_padding`` adds rows and columns at
    the bottom and right that only the bias reaches. The batch is folded into the columns so
    that each product is one large matrix product.
    """

    def forward(
        self,
        x,
        weight,
        bias=None,
        stride=(1, 1),
        padding=(0, 0),
        output_padding=(0, 0),
        dilation=(1, 1),
        groups=1,
    ):
        n, c_in, h, w = x.shape
        per_group, kh, kw = weight.shape[1:]
        pads = tuple((p, p) for p in padding)
        grown = (
            (size - 1) * s + d * (k - 1) + 1 + extra
            for size, k, s, d, extra in zip((h, w), (kh, kw), stride, dilation, output_padding)
        )
        padded_shape = (n, groups * per_group, *grown)
        w_mat = weight.reshape(groups, c_in // groups, per_group * kh * kw)
        x_mat = x.reshape(n, groups, c_in // groups, h * w).transpose(1, 2, 0, 3)
        x_mat = xp.ascontiguousarray(x_mat).reshape(groups, c_in // groups, n * h * w)
        cols = xp.swapaxes(w_mat, -1, -2) @ x_mat  # (groups, taps (o, i, j), n h w)
        cols = cols.reshape(groups * per_group, kh, kw, n, h, w).transpose(3, 0, 1, 2, 4, 5)
        z = unpad(col2im(cols, padded_shape, (kh, kw), stride, dilation, (h, w)), pads)
        z = xp.ascontiguousarray(z)
        if bias is not None:
            z += bias.reshape(1, -1, 1, 1)
        self.save(x_mat, w_mat, (kh, kw), stride, pads, dilation, (n, h, w))
        return z

    def backward(self, grad):
        x_mat, w_mat, kernel, stride, pads, dilation, (n, h, w) = self.saved
        groups, c_per_group = x_mat.shape[:2]
        # the im2col matrix of the gradient, read as the convolution this op is the transpose of
        win = windows(pad_spatial(grad, pads), kernel, stride, dilation, (h, w))
        cols = xp.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3))  # (C_out, kh, kw, N, h, w)
        cols = cols.reshape(groups, -1, n * h * w)
        grad_x = grad_w = grad_b = None
        if self.needs_grad[0]:
            grad_x = (w_mat @ cols).reshape(groups * c_per_group, n, h, w).transpose(1, 0, 2, 3)
        if self.needs_grad[1]:
            grad_w = x_mat @ xp.swapaxes(cols, -1, -2)
            grad_w = grad_w.reshape(groups * c_per_group, -1, *kernel)
        if len(self.needs_grad) > 2 and self.needs_grad[2]:
            grad_b = grad.sum(axis=(0, 2, 3))
        return grad_x, grad_w, grad_b
