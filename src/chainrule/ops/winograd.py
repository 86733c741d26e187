"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 convolution (stride 1) with 2.25 times fewer
multiplications than the direct patch-matrix product.

Each 2x2 block of output pixels is computed from the 4x4 input tile under it, per channel pair:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (g: 3x3 filter, d: 4x4 tile, *: elementwise)

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016). Summed over input
channels, the elementwise products of the 16 transformed positions become 16 matrix products
(tiles x C) @ (C x O): 16 multiplications per 4 outputs instead of 36. The transforms are small
products too, with kron(B^T, B^T) (16 x 16) and kron(A^T, A^T) (4 x 16). Every number in them
is exact in binary, so the result differs from the direct product by rounding only.
"""

from __future__ import annotations

from ..backend import as_strided, xp

_B_T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
_G = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
_A_T = [[1, 1, 1, 0], [0, 1, -1, -1]]


def filter_transform(weight_taps, dtype):
    """U = G g G^T for each (input, output) channel pair: (3, 3, C, O) filters -> (16, C, O)."""
    g = xp.asarray(_G, dtype=dtype)
    u = xp.einsum("ai,ijco,bj->abco", g, weight_taps.astype(dtype, copy=False), g)
    return xp.ascontiguousarray(u).reshape(16, *weight_taps.shape[2:])


def tiles_of(out_hw) -> tuple:
    """How many 2x2 output blocks cover an output of ``out_hw`` (the last may overhang)."""
    return (out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2


def padded_size(out_hw) -> tuple:
    """The input size the tiles read: 2 more than the tiled output (4x4 tiles, step 2)."""
    th, tw = tiles_of(out_hw)
    return 2 * th + 2, 2 * tw + 2


def _transformed_input(padded, tiles_hw, dtype):
    """V = B^T d B for every 4x4 tile d of ``padded``: (16, tiles, C)."""
    m, _, _, c = padded.shape
    th, tw = tiles_hw
    s_m, s_h, s_w, s_c = padded.strides
    tiles = as_strided(  # (4, 4, m, th, tw, C): position (i, j) of every tile
        padded, (4, 4, m, th, tw, c), (s_h, s_w, s_m, 2 * s_h, 2 * s_w, s_c)
    )
    d = xp.empty((16, m * th * tw * c), dtype)
    xp.copyto(d.reshape(tiles.shape), tiles)
    v = xp.empty((16, m * th * tw, c), dtype)
    xp.matmul(_matrix("input", dtype), d, out=v.reshape(16, -1))  # all tiles at once
    return v


def conv3x3(padded, u, out) -> None:
    """out (m, Ho, Wo, O) = the 3x3 correlation of ``padded`` (m, Hp, Wp, C), channels last,
    with filters transformed by :func:`filter_transform`; Hp, Wp = :func:`padded_size`."""
    m, (ho, wo, o), dtype = padded.shape[0], out.shape[1:], out.dtype
    th, tw = tiles_of((ho, wo))
    v = _transformed_input(padded, (th, tw), dtype)
    products = xp.empty((16, m * th * tw, o), dtype)
    xp.matmul(v, u, out=products)
    blocks = xp.empty((2, 2, m, th, tw, o), dtype)
    xp.matmul(_matrix("output", dtype), products.reshape(16, -1), out=blocks.reshape(4, -1))
    for a in range(2):  # each output pixel of the 2x2 blocks to its place (cut the overhang)
        for b in range(2):
            rows, columns = (ho - a + 1) // 2, (wo - b + 1) // 2
            out[:, a::2, b::2] = blocks[a, b, :, :rows, :columns]


def filter_grad(padded, grad) -> xp.ndarray:
    """dU (16, C, O) of one chunk, for ``grad`` = dL/dout (m, Ho, Wo, O) of :func:`conv3x3`.

    The adjoint of each step of the forward pass: dM = kron(A^T, A^T)^T dY for every tile
    (overhanging outputs have no gradient), then dU = V^T dM at each of the 16 positions.
    """
    m, ho, wo, o = grad.shape
    th, tw = tiles_of((ho, wo))
    dtype = grad.dtype
    blocks = xp.empty((2, 2, m, th, tw, o), dtype)
    for a in range(2):
        for b in range(2):
            rows, columns = (ho - a + 1) // 2, (wo - b + 1) // 2
            blocks[a, b, :, :rows, :columns] = grad[:, a::2, b::2]
            blocks[a, b, :, rows:] = 0
            blocks[a, b, :, :, columns:] = 0
    grad_products = xp.empty((16, m * th * tw, o), dtype)
    xp.matmul(_matrix("output", dtype).T, blocks.reshape(4, -1), out=grad_products.reshape(16, -1))
    v = _transformed_input(padded, (th, tw), dtype)
    return xp.matmul(v.transpose(0, 2, 1), grad_products)


def filter_grad_to_taps(grad_u):
    """dW (3, 3, C, O) from dU (16, C, O): the adjoint of U = G g G^T is dW = G^T dU G."""
    g = xp.asarray(_G, dtype=grad_u.dtype)
    return xp.einsum("ai,abco,bj->ijco", g, grad_u.reshape(4, 4, *grad_u.shape[1:]), g)


_matrices: dict = {}


def _matrix(which: str, dtype):
    """kron(B^T, B^T) (16 x 16) or kron(A^T, A^T) (4 x 16), cached per dtype."""
    key = (which, xp.dtype(dtype))
    if key not in _matrices:
        small = xp.asarray(_B_T if which == "input" else _A_T, dtype=dtype)
        _matrices[key] = xp.kron(small, small)
    return _matrices[key]
