"""Fast max and average pooling: channels-last, in chunks of the batch on the thread pool.

The same math as the readable :class:`chainrule.ops.conv.MaxPool2d` and
:class:`~chainrule.ops.conv.AvgPool2d` (the tests hold them equal, values and gradients, for
every kernel, stride and padding). Images are read as (N, H, W, C), so each tap of the window
(one of the kh * kw offsets) is a strided view whose rows are W' * C contiguous numbers when
stride 1, or C numbers otherwise; the output is an (N, C, H', W') view of channels-last memory,
as the fast convolution's, so a conv -> ReLU -> pool -> conv chain never transposes.

When the windows tile the image (stride equal to the kernel, no padding), the image is viewed as
(N, H'/kh, kh, W'/kw, kw, C) tiles ("pooling by reshape"): max pooling reduces over the columns,
then the rows of each tile, and both backward passes write each share straight into its place;
otherwise the shares are added into a padded buffer, tap by tap.
"""

from __future__ import annotations

from ..backend import xp
from ..function import Function
from ..threads import split_batch
from .conv import output_size


def _geometry(x, kernel, stride, padding):
    n, c, h, w = x.shape
    ho = output_size(h, kernel[0], stride[0], sum(padding[0]))
    wo = output_size(w, kernel[1], stride[1], sum(padding[1]))
    return kernel, stride, padding, (ho, wo)


def _taps(padded, geometry):
    """(k, view) for each offset k = (i, j) of the window: the values that offset sees, (m, H', W', C)."""
    (kh, kw), (sh, sw), _, (ho, wo) = geometry
    for i in range(kh):
        for j in range(kw):
            yield (
                i * kw + j,
                padded[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw],
            )


def _padded(x_chunk, padding, value):
    (top, bottom), (left, right) = padding
    if not (top or bottom or left or right):
        return x_chunk
    m, h, w, c = x_chunk.shape
    out = xp.empty((m, top + h + bottom, left + w + right, c), x_chunk.dtype)
    out[...] = value
    out[:, top : top + h, left : left + w] = x_chunk
    return out


def _tiles(grad_x, geometry):
    """The (m, H', kh, W', kw, C) view of grad_x when the windows tile the image, else None."""
    (kh, kw), stride, padding, (ho, wo) = geometry
    if tuple(stride) != (kh, kw) or padding != ((0, 0), (0, 0)):
        return None
    m, h, w, c = grad_x.shape
    grad_x[:, ho * kh :] = 0  # rows and columns no window covers (floor mode) get no gradient
    grad_x[:, :, wo * kw :] = 0
    return grad_x[:, : ho * kh, : wo * kw].reshape(m, ho, kh, wo, kw, c)


def _scatter(grad_x, share_of_tap, geometry):
    """grad_x[window positions of tap k] += share_of_tap(k), for every tap, through a padded buffer."""
    _, _, ((top, bottom), (left, right)), _ = geometry
    m, h, w, c = grad_x.shape
    padded = xp.empty((m, top + h + bottom, left + w + right, c), grad_x.dtype)
    padded[...] = 0
    for k, tap in _taps(padded, geometry):
        tap += share_of_tap(k)
    grad_x[...] = padded[:, top : top + h, left : left + w]


def _running_max(taps, out, index) -> None:
    """out = the elementwise maximum of ``taps`` (views of one shape); index = which tap held
    it first (ties keep the earlier tap, as PyTorch)."""
    if len(taps) == 1:
        out[...] = taps[0]
        index[...] = 0
        return
    first, second, *rest = taps
    xp.maximum(first, second, out=out)
    xp.greater(second, first, out=index)
    if not rest:
        return
    took_over = xp.empty(out.shape, bool)
    step = xp.empty(out.shape, index.dtype)
    for k, tap in enumerate(rest, 2):
        xp.greater(tap, out, out=took_over)
        xp.maximum(out, tap, out=out)
        # index = k where the tap took over, as arithmetic: a masked store is 20x slower here
        xp.subtract(index.dtype.type(k), index, out=step)
        step *= took_over
        index += step


def _index_dtype(taps: int):
    return xp.int8 if taps < 128 else xp.int64


class ChannelsLastMaxPool2d(Function):
    """z = the largest value of each window.   dz/dx = 1 at the window's first maximum, else 0.

    Where the windows tile the image, the maximum is taken in two stages: over the kw columns
    of each window row (runs of C numbers), then over its kh rows (runs of W' * C numbers, most
    of the work on the longest runs); forward keeps the winning column of each row and the
    winning row. Otherwise it keeps, per output, which of the kh * kw taps won.
    """

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0))):
        geometry = _geometry(x, kernel, stride, padding)
        n, c, h, w = x.shape
        (kh, kw), (ho, wo) = kernel, geometry[3]
        x_last = x.transpose(0, 2, 3, 1)
        out = xp.empty((n, ho, wo, c), dtype=x.dtype)
        self.tiled = tuple(stride) == tuple(kernel) and padding == ((0, 0), (0, 0))
        if self.tiled:
            winners = (
                xp.empty((n, ho, wo, c), dtype=_index_dtype(kh)),  # the row, per window
                xp.empty((n, ho * kh, wo, c), dtype=_index_dtype(kw)),  # the column, per row
            )
        else:
            winners = (xp.empty((n, ho, wo, c), dtype=_index_dtype(kh * kw)),)

        def work(start, stop, chunk):
            z = out[start:stop]
            if not self.tiled:
                padded = _padded(x_last[start:stop], padding, -xp.inf)
                taps = [tap for _, tap in _taps(padded, geometry)]
                _running_max(taps, z, winners[0][start:stop])
                return
            m = stop - start
            windows = x_last[start:stop, : ho * kh, : wo * kw].reshape(m, ho * kh, wo, kw, c)
            row_max = xp.empty((m, ho * kh, wo, c), x.dtype)
            columns = [windows[:, :, :, j] for j in range(kw)]
            _running_max(columns, row_max, winners[1][start:stop])
            rows = row_max.reshape(m, ho, kh, wo, c)
            _running_max([rows[:, :, i] for i in range(kh)], z, winners[0][start:stop])

        split_batch(work, n, h * w * c * x.itemsize)
        self.save(winners, x.shape, geometry)
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad):
        winners, (n, c, h, w), geometry = self.saved
        (kh, kw), (ho, wo) = geometry[0], geometry[3]
        grad_last = grad.transpose(0, 2, 3, 1)
        grad_x = xp.empty((n, h, w, c), dtype=grad.dtype)

        def work(start, stop, chunk):
            g, m = grad_last[start:stop], stop - start
            won = xp.empty(g.shape, bool)
            if not self.tiled:

                def share(k):
                    xp.equal(winners[0][start:stop], k, out=won)
                    return g * won

                _scatter(grad_x[start:stop], share, geometry)
                return
            # the adjoint of the two stages: first to the winning row, then to its winning column
            per_row = xp.empty((m, ho, kh, wo, c), grad.dtype)
            for i in range(kh):
                xp.equal(winners[0][start:stop], i, out=won)
                xp.multiply(g, won, out=per_row[:, :, i])
            per_row = per_row.reshape(m, ho * kh, wo, c)
            tiles = _tiles(grad_x[start:stop], geometry).reshape(m, ho * kh, wo, kw, c)
            won_column = xp.empty(per_row.shape, bool)
            for j in range(kw):
                xp.equal(winners[1][start:stop], j, out=won_column)
                xp.multiply(per_row, won_column, out=tiles[:, :, :, j])

        split_batch(work, n, h * w * c * grad.itemsize)
        return grad_x.transpose(0, 3, 1, 2)


class ChannelsLastAvgPool2d(Function):
    """z = the mean of each kh x kw window (padding counts as zeros, as PyTorch's default).
    dz/dx = 1/(kh kw) for every x in the window."""

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0))):
        geometry = _geometry(x, kernel, stride, padding)
        n, c, h, w = x.shape
        ho, wo = geometry[3]
        x_last = x.transpose(0, 2, 3, 1)
        out = xp.empty((n, ho, wo, c), dtype=x.dtype)
        scale = x.dtype.type(1 / (kernel[0] * kernel[1]))

        def work(start, stop, chunk):
            z = out[start:stop]
            padded = _padded(x_last[start:stop], padding, 0)
            for k, tap in _taps(padded, geometry):
                if k == 0:
                    z[...] = tap
                else:
                    z += tap
            z *= scale

        split_batch(work, n, h * w * c * x.itemsize)
        self.save(x.shape, geometry)
        return out.transpose(0, 3, 1, 2)

    def backward(self, grad):
        (n, c, h, w), geometry = self.saved
        (kh, kw) = geometry[0]
        grad_last = grad.transpose(0, 2, 3, 1)
        grad_x = xp.empty((n, h, w, c), dtype=grad.dtype)
        scale = grad.dtype.type(1 / (kh * kw))

        def work(start, stop, chunk):
            share = xp.empty(grad_last[start:stop].shape, grad.dtype)
            xp.multiply(grad_last[start:stop], scale, out=share)
            tiles = _tiles(grad_x[start:stop], geometry)
            if tiles is None:
                _scatter(grad_x[start:stop], lambda k: share, geometry)
                return
            tiles[...] = share[:, :, None, :, None]

        split_batch(work, n, h * w * c * grad.itemsize)
        return grad_x.transpose(0, 3, 1, 2)
