"""Ops that move values around without changing them: their gradients move back the same way."""

from __future__ import annotations

from ..backend import add_at, xp
from ..function import Function


class Reshape(Function):
    """z = x viewed with a new shape.   dx = dz reshaped to x's shape."""

    view, saves_inputs = True, False

    def forward(self, x, shape=()):
        self.save(x.shape)
        return x.reshape(shape)

    def backward(self, grad):
        (shape,) = self.saved
        return grad.reshape(shape)


class Permute(Function):
    """z = x with its axes reordered by ``axes``.   dx = dz with the inverse order."""

    view, saves_inputs = True, False

    def forward(self, x, axes=None):
        axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
        self.save(tuple(xp.argsort(axes)))
        return x.transpose(axes)

    def backward(self, grad):
        (inverse,) = self.saved
        return grad.transpose(inverse)


class Expand(Function):
    """z = x broadcast to ``shape``.   dx = dz summed over the broadcast axes (done by the engine)."""

    view, saves_inputs = True, False

    def forward(self, x, shape=()):
        return xp.broadcast_to(x, shape)

    def backward(self, grad):
        return grad


class Concatenate(Function):
    """z = [x_1, x_2, ...] joined along ``axis``.   dx_k = the slice of dz where x_k went."""

    promotes, saves_inputs = True, False

    def forward(self, *xs, axis=0):
        self.axis = axis
        self.save([x.shape[axis] for x in xs])
        return xp.concatenate(xs, axis=axis)

    def backward(self, grad):
        (sizes,) = self.saved
        bounds = xp.cumsum(sizes)[:-1]
        return tuple(xp.split(grad, bounds, axis=self.axis))


class Stack(Function):
    """z = [x_1, x_2, ...] stacked along a new ``axis``.   dx_k = dz taken at index k of that axis."""

    promotes, saves_inputs = True, False

    def forward(self, *xs, axis=0):
        self.axis = axis
        return xp.stack(xs, axis=axis)

    def backward(self, grad):
        return tuple(xp.moveaxis(grad, self.axis, 0))


class Pad(Function):
    """z = x surrounded by ``value`` (``pad_width`` as in ``np.pad``).   dx = the middle of dz."""

    saves_inputs = False

    def forward(self, x, pad_width=(), value=0.0):
        pad_width = xp.broadcast_to(xp.asarray(pad_width, dtype=int), (x.ndim, 2))
        self.save(tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, x.shape)))
        return xp.pad(x, pad_width, constant_values=value)

    def backward(self, grad):
        (middle,) = self.saved
        return grad[middle]


class Index(Function):
    """z = x[key] (slices, integer arrays, boolean masks).
    dx = zeros with dz added at ``key``; repeated indices accumulate (``backend.add_at``).
    Basic indexing (ints, slices) gives a view that shares x's storage.
    """

    view, saves_inputs = True, False

    def forward(self, x, key=None):
        self.save(x.shape, x.dtype, key)
        return x[key]

    def backward(self, grad):
        shape, dtype, key = self.saved
        grad_x = xp.zeros(shape, dtype=dtype)
        if _is_basic(key):
            grad_x[key] = grad  # basic indexing never repeats an element
        else:
            add_at(grad_x, key, grad)
        return grad_x


def _is_basic(key) -> bool:
    keys = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice)) for k in keys)


class SetItem(Function):
    """z = a with a[key] = b, written into a's own storage (the op behind ``a[key] = b``).
    dz/da = 1 except at ``key`` (overwritten: 0);  dz/db = dz[key] (summed back to b's shape).
    """

    view, saves_inputs = True, False

    def forward(self, a, b, key=None):
        a[key] = b
        self.key = key
        return a

    def backward(self, grad):
        grad_a = None
        if self.needs_grad[0]:
            grad_a = grad.copy()
            grad_a[self.key] = 0
        grad_b = grad[self.key] if self.needs_grad[1] else None
        return grad_a, grad_b


class Repeat(Function):
    """z = x tiled ``repeats`` times along each axis (PyTorch's ``repeat``, NumPy's ``tile``).
    dx = dz cut into its tiles and the tiles summed.
    """

    saves_inputs = False

    def forward(self, x, repeats=()):
        shape = (1,) * (len(repeats) - x.ndim) + x.shape
        self.save(x.shape, shape, repeats)
        return xp.tile(x.reshape(shape), repeats)

    def backward(self, grad):
        x_shape, shape, repeats = self.saved
        split = [n for pair in zip(repeats, shape) for n in pair]  # (r0, s0, r1, s1, ...)
        tile_axes = tuple(range(0, 2 * len(shape), 2))
        return grad.reshape(split).sum(axis=tile_axes).reshape(x_shape)


class Flip(Function):
    """z = x with the order of ``axes`` reversed (a copy, as PyTorch's).   dx = dz flipped back."""

    saves_inputs = False

    def forward(self, x, axes=()):
        self.axes = axes
        return xp.flip(x, axes).copy()

    def backward(self, grad):
        return xp.flip(grad, self.axes)


class Roll(Function):
    """z = x shifted by ``shifts`` along ``axes``, the values pushed past the end coming round to
    the start (``axes=None``: along the flattened x, keeping its shape).   dx = dz rolled back
    by -shifts."""

    saves_inputs = False

    def forward(self, x, shifts=0, axes=None):
        self.shifts, self.axes = shifts, axes
        return xp.roll(x, shifts, axes)

    def backward(self, grad):
        back = -self.shifts if isinstance(self.shifts, int) else tuple(-s for s in self.shifts)
        return xp.roll(grad, back, self.axes)


class Gather(Function):
    """z[i][j] = x[index[i][j]][j] along ``axis`` 0 (likewise for any axis; PyTorch's ``gather``).
    dx = zeros with dz added at the gathered places (an index used twice gets both).
    """

    saves_inputs = False

    def forward(self, x, index=None, axis=0):
        places = list(xp.indices(index.shape, sparse=True))
        places[axis] = index
        self.save(x.shape, x.dtype, tuple(places))
        return x[tuple(places)]

    def backward(self, grad):
        shape, dtype, places = self.saved
        grad_x = xp.zeros(shape, dtype=dtype)
        add_at(grad_x, places, grad)
        return grad_x
