"""The fast 2-D convolution: channels-last patches, one matrix product per chunk of the batch,
chunks spread over a small thread pool (:mod:`~chainrule.threads`).

It computes exactly what the readable :class:`chainrule.ops.conv.Conv2d` computes (the tests hold
the two equal, values and gradients, for every stride, padding, dilation and groups); what
differs is where the numbers sit in memory and how the work is cut:

* Images are read as (N, H, W, C), channels last. One window's patch, tap (i, j) and channel c,
  is then kw * C numbers in a row, so building the patch matrix is a copy of long contiguous
  runs, and the output comes out of the product already channels-last. It is handed on as an
  (N, C, H, W) *view* of that memory: the next convolution or pooling reads it without a copy.
* The batch is folded into the rows of the product (rows: every output pixel of every example
  of a chunk), so the product is large and not skinny even with few channels.
* A chunk is a few examples whose patch matrix fits the cache; the worker threads take the
  chunks in turn and run them with a one-thread BLAS, so copies, products and scatter-adds all use both cores.
* Patches are not kept for the backward pass; each chunk's are rebuilt there (cheaper than the
  products, and the memory stays near PyTorch's, which keeps only the input too).
"""

from __future__ import annotations

from ..backend import as_strided, xp
from ..function import Function
from ..sums import leading_axes_sums
from ..threads import split_batch
from . import winograd
from .conv import output_size


def _padded(x_chunk, padding, dtype, size=None):
    """The chunk (m, H, W, C) zero-padded and contiguous (itself if it already is both). ``size``
    (rows, columns) extends the bottom and right padding to that total size."""
    (top, bottom), (left, right) = padding
    m, h, w, c = x_chunk.shape
    rows, columns = size or (top + h + bottom, left + w + right)
    if (rows, columns) == (h, w) and x_chunk.flags.c_contiguous:
        return x_chunk
    out = xp.empty((m, rows, columns, c), dtype)
    out[:, :top] = 0
    out[:, top + h :] = 0
    out[:, top : top + h, :left] = 0
    out[:, top : top + h, left + w :] = 0
    out[:, top : top + h, left : left + w] = x_chunk
    return out


def _tap_slices(kernel, stride, dilation, out_hw):
    """(i, j, rows, columns) for each tap: where in the padded image tap (i, j) reads."""
    for i in range(kernel[0]):
        rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (out_hw[0] - 1) + 1, stride[0])
        for j in range(kernel[1]):
            start = j * dilation[1]
            yield i, j, rows, slice(start, start + stride[1] * (out_hw[1] - 1) + 1, stride[1])


class ChannelsLastConv2d(Function):
    """z[n, o] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, s*h + d*i, s*w + d*j]
    (per group of channels), computed channels-last in chunks of the batch.
    dX = each tap's dZ W added where it read,  dW = dZ^T P,  db = column sums of dZ (see below).

    With P a chunk's patch matrix (rows: output pixels; columns: taps (i, j, c)):
    Z = P W^T + b,  dW = dZ^T P,  db = column sums of dZ,  and
    dX = sum over taps (i, j) of (dZ W[:, :, i, j]) added where tap (i, j) read its input.
    Returns an (N, O, H', W') view of channels-last memory.

    3x3 filters at stride 1 between layers of at least ``WINOGRAD_MIN_CHANNELS`` channels take
    Winograd's F(2x2, 3x3) (:mod:`~chainrule.ops.winograd`) for Z, for dX (a 3x3 correlation
    of dZ with the flipped, transposed filters) and for dW (through the transformed filters).
    """

    use_winograd = True
    WINOGRAD_MIN_CHANNELS = 16

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
        n, c, h, w = x.shape
        out_channels, c_group, kh, kw = weight.shape
        per_group = out_channels // groups
        ho = output_size(h, kh, stride[0], sum(padding[0]), dilation[0])
        wo = output_size(w, kw, stride[1], sum(padding[1]), dilation[1])
        self.geometry = (kh, kw), stride, padding, dilation, groups, (ho, wo)
        # the filters as (groups, taps (i, j, c), out channels per group): the product's right side
        w_taps = weight.reshape(groups, per_group, c_group, kh, kw).transpose(0, 3, 4, 2, 1)
        w_taps = xp.ascontiguousarray(w_taps).reshape(groups, kh * kw * c_group, per_group)
        dtype = xp.result_type(x.dtype, weight.dtype)
        x_last = x.transpose(0, 2, 3, 1)
        out = xp.empty((n, ho, wo, out_channels), dtype=dtype)
        self.winograd = (
            self.use_winograd
            and (kh, kw, *stride, *dilation, groups) == (3, 3, 1, 1, 1, 1, 1)
            and min(c, out_channels) >= self.WINOGRAD_MIN_CHANNELS
            and max(max(p) for p in padding) <= 2  # so that dX is a padded 3x3 correlation too
        )
        if self.winograd:
            u = winograd.filter_transform(weight.transpose(2, 3, 1, 0), dtype)

        def work(start, stop, chunk):
            z = out[start:stop].reshape(-1, out_channels)
            if self.winograd:
                size = winograd.padded_size((ho, wo))
                padded = _padded(x_last[start:stop], padding, dtype, size)
                winograd.conv3x3(padded, u, out[start:stop])
            elif groups == 1:
                patches = self.patches(x_last[start:stop])
                xp.matmul(patches[0], w_taps[0], out=z)
            else:
                patches = self.patches(x_last[start:stop])
                z_groups = xp.empty((groups, len(z), per_group), dtype)
                xp.matmul(patches, w_taps, out=z_groups)
                z.reshape(len(z), groups, per_group)[...] = z_groups.transpose(1, 0, 2)
            if bias is not None:
                z += bias

        split_batch(work, n, ho * wo * kh * kw * c * x.itemsize)
        self.save(x, weight)
        return out.transpose(0, 3, 1, 2)

    def patches(self, x_chunk):
        """The patch matrix (groups, rows, taps) of a chunk (m, H, W, C)."""
        (kh, kw), stride, padding, dilation, groups, (ho, wo) = self.geometry
        padded = _padded(x_chunk, padding, x_chunk.dtype)
        m, c = padded.shape[0], padded.shape[3]
        c_group = c // groups
        if (kh, kw, *stride, groups) == (1, 1, 1, 1, 1) and padded.shape[1:3] == (ho, wo):
            return padded.reshape(1, m * ho * wo, c)  # a 1x1 convolution reads the image itself
        if c == 1:  # one channel: copy tap by tap (long runs), hand out the transposed view
            out = xp.empty((kh, kw, m, ho, wo), padded.dtype)
            for i, j, rows, columns in _tap_slices((kh, kw), stride, dilation, (ho, wo)):
                out[i, j] = padded[:, rows, columns, 0]
            return out.reshape(1, kh * kw, m * ho * wo).transpose(0, 2, 1)
        s_m, s_h, s_w, s_c = padded.strides
        windows = as_strided(
            padded,
            (groups, m, ho, wo, kh, kw, c_group),
            (c_group * s_c, s_m, s_h * stride[0], s_w * stride[1], s_h * dilation[0],
             s_w * dilation[1], s_c),
        )  # fmt: skip
        out = xp.empty(windows.shape, padded.dtype)
        xp.copyto(out, windows)
        return out.reshape(groups, m * ho * wo, kh * kw * c_group)

    def backward(self, grad):
        x, weight = self.saved
        (kh, kw), stride, padding, dilation, groups, (ho, wo) = self.geometry
        n, c, h, w = x.shape
        out_channels, c_group = weight.shape[:2]
        per_group = out_channels // groups
        need_x, need_w = self.needs_grad[0], self.needs_grad[1]
        need_b = len(self.needs_grad) > 2 and self.needs_grad[2]
        # the filters tap by tap, (kh, kw, groups, out per group, in per group), for dX
        w_by_tap = weight.reshape(groups, per_group, c_group, kh, kw).transpose(3, 4, 0, 1, 2)
        w_by_tap = xp.ascontiguousarray(w_by_tap, dtype=grad.dtype)
        if self.winograd and need_x:  # dX = correlation of dZ with the flipped filters, O -> C
            u_back = winograd.filter_transform(w_by_tap[::-1, ::-1, 0], grad.dtype)
        x_last = x.transpose(0, 2, 3, 1)
        grad_last = grad.transpose(0, 2, 3, 1)
        grad_x = xp.empty((n, h, w, c), dtype=grad.dtype) if need_x else None
        partial_w, partial_b = {}, {}

        def work(start, stop, chunk):
            g = grad_last[start:stop]
            if not g.flags.c_contiguous:  # e.g. a gradient coming back through a flatten
                g_last = xp.empty(g.shape, g.dtype)
                g_last[...] = g
                g = g_last
            rows = g.reshape(-1, groups, per_group).transpose(1, 0, 2)  # (groups, rows, out)
            if need_w and self.winograd:  # dU of Winograd's transformed filters
                size = winograd.padded_size((ho, wo))
                dw = winograd.filter_grad(_padded(x_last[start:stop], padding, g.dtype, size), g)
            elif need_w:
                dw = xp.matmul(rows.transpose(0, 2, 1), self.patches(x_last[start:stop]))
            if need_w:
                partial_w[chunk] = dw
            if need_b:
                partial_b[chunk] = leading_axes_sums(g.reshape(-1, out_channels), 1)
            if need_x and self.winograd:
                (top, _), (left, _) = padding
                flipped = ((2 - top, 0), (2 - left, 0))
                size = winograd.padded_size((h, w))
                padded = _padded(g, flipped, grad.dtype, size)
                winograd.conv3x3(padded, u_back, grad_x[start:stop])
            elif need_x:
                grad_x[start:stop] = self.input_grad(rows, w_by_tap, stop - start, (h, w, c))

        split_batch(work, n, ho * wo * kh * kw * c * x.itemsize)
        grad_w = grad_b = None
        if need_w:  # per-chunk sums, added in chunk order: the same result every run
            dw = sum(partial_w[t] for t in sorted(partial_w))
            if self.winograd:  # (16, in, out) -> (3, 3, in, out)
                dw = winograd.filter_grad_to_taps(dw).transpose(3, 2, 0, 1)
            else:  # (groups, out, taps (i, j, c))
                dw = dw.reshape(groups, per_group, kh, kw, c_group).transpose(0, 1, 4, 2, 3)
            grad_w = xp.ascontiguousarray(dw, dtype=grad.dtype).reshape(weight.shape)
        if need_b:
            grad_b = sum(partial_b[t] for t in sorted(partial_b))
        if need_x:
            grad_x = grad_x.transpose(0, 3, 1, 2)
        return grad_x, grad_w, grad_b

    def input_grad(self, rows, w_by_tap, m, image_shape):
        """dX of one chunk (m, H, W, C): for each tap, dZ W[tap] added where the tap read."""
        (kh, kw), stride, padding, dilation, groups, (ho, wo) = self.geometry
        (top, bottom), (left, right) = padding
        h, w, c = image_shape
        dtype = rows.dtype
        grad_padded = xp.empty((m, top + h + bottom, left + w + right, c), dtype)
        grad_padded[...] = 0
        tap = xp.empty((groups, rows.shape[1], c // groups), dtype)
        tap_image = tap.reshape(groups, m, ho, wo, -1).transpose(1, 2, 3, 0, 4)
        target = grad_padded.reshape(m, *grad_padded.shape[1:3], groups, -1)
        for i, j, image_rows, image_columns in _tap_slices((kh, kw), stride, dilation, (ho, wo)):
            xp.matmul(rows, w_by_tap[i, j], out=tap)
            target[:, image_rows, image_columns] += tap_image
        return grad_padded[:, top : top + h, left : left + w]
