"""Matrix products as functions: ``matmul``, ``mm``, ``bmm``, ``dot``, ``einsum``, ``linear``."""

from __future__ import annotations

import string

from ..ops import linalg as la
from ..tensor import Tensor, _raw
from .math import mul, write_out
from .shapes import unsqueeze


def matmul(input, other, *, out=None) -> Tensor:
    """Matrix product with NumPy's and PyTorch's rules (1-D, 2-D, batched with broadcasting)."""
    result = matrix_product(input, other)
    return result if out is None else write_out(result, out)


def matrix_product(a, b) -> Tensor:
    """``a @ b`` (the operator; :func:`matmul` without ``out=``)."""
    sa, sb = _raw(a).shape, _raw(b).shape
    if not sa or not sb or sa[-1] != (sb[-2] if len(sb) > 1 else sb[0]):
        raise ValueError(f"matmul: shapes {sa} and {sb} do not fit (inner dimensions must match)")
    return la.MatMul.apply(a, b)


def mm(input, mat2, *, out=None) -> Tensor:
    """The product of two matrices (2-D only; see :func:`matmul` for the general case)."""
    _check_dims("mm", input, mat2, 2)
    return matmul(input, mat2, out=out)


def bmm(input, mat2, *, out=None) -> Tensor:
    """Products of two batches of matrices, (b, n, k) @ (b, k, m) -> (b, n, m), no broadcasting."""
    _check_dims("bmm", input, mat2, 3)
    if _raw(input).shape[0] != _raw(mat2).shape[0]:
        raise ValueError(f"bmm: batch sizes differ: {_raw(input).shape} and {_raw(mat2).shape}")
    return matmul(input, mat2, out=out)


def mv(input, vec) -> Tensor:
    """Matrix times vector: (n, k) @ (k,) -> (n,)."""
    if _raw(input).ndim != 2 or _raw(vec).ndim != 1:
        raise ValueError(
            f"mv expects a matrix and a vector, got shapes {_raw(input).shape} and {_raw(vec).shape}"
        )
    return matmul(input, vec)


def dot(input, tensor) -> Tensor:
    """The dot product of two vectors of the same length."""
    _check_dims("dot", input, tensor, 1)
    return matmul(input, tensor)


def outer(input, vec2) -> Tensor:
    """The outer product of two vectors: out[i, j] = input[i] * vec2[j]."""
    _check_dims("outer", input, vec2, 1)
    return mul(unsqueeze(input, 1), unsqueeze(vec2, 0))


ger = outer


def _check_dims(name: str, a, b, ndim: int) -> None:
    if _raw(a).ndim != ndim or _raw(b).ndim != ndim:
        raise ValueError(
            f"{name} expects two {ndim}-D tensors, got shapes {_raw(a).shape} and {_raw(b).shape}"
        )


def linear(input, weight, bias=None) -> Tensor:
    """input @ weight.T + bias (weight is (out_features, in_features), as in PyTorch)."""
    return la.Linear.apply(input, weight, bias)


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation: ``einsum("ij,jk->ik", a, b)`` is ``a @ b``; ``"bij,bjk->bik"`` a
    batched product, ``"ii"`` a trace. Indices missing from the output are summed; without
    ``->`` the output is every index used once, in alphabetical order; ``...`` stands for the
    remaining (broadcast) axes. Operands may also come as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    shapes = [_raw(o).shape for o in operands]
    return la.Einsum.apply(*operands, equation=explicit_equation(equation, shapes))


def explicit_equation(equation: str, shapes: list) -> str:
    """``equation`` with ``...`` written out as letters and the output spelled out."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {equation!r} names {len(terms)} operands, got {len(shapes)}")
    free = [c for c in string.ascii_letters if c not in equation]
    widths = [len(shape) - len(term.replace("...", "")) for term, shape in zip(terms, shapes)]
    ellipsis = "".join(free[: max([w for t, w in zip(terms, widths) if "..." in t], default=0)])
    for term, shape, width in zip(terms, shapes, widths):
        if ("..." not in term and width != 0) or width < 0:
            raise ValueError(
                f"einsum: the term {term!r} does not fit an operand of shape {tuple(shape)}"
            )
    terms = [
        t.replace("...", ellipsis[len(ellipsis) - w :] if w else "") for t, w in zip(terms, widths)
    ]
    if arrow:
        output = output.replace("...", ellipsis)
    else:
        letters = "".join(terms)
        output = ellipsis + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis)
        )
    return ",".join(terms) + "->" + output
