"""Every op in the table through gradcheck (float64 central differences), random shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from op_table import CASES

IDS = [c.name for c in CASES]


def build(case, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    return case.build(data.draw, rng)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@given(data=st.data())
def test_op_gradients_match_finite_differences(case, data):
    arrays, fn, _ = build(case, data)
    tensors = [cr.tensor(a, requires_grad=True) for a in arrays]
    report = cr.gradcheck(fn, *tensors)
    assert report.passed


@pytest.mark.parametrize("case", CASES, ids=IDS)
@given(data=st.data())
@settings(max_examples=3)
def test_op_keeps_float32(case, data):
    """No silent upcasts: float32 in, float32 out, float32 gradients of the inputs' shapes."""
    arrays, fn, _ = build(case, data)
    tensors = [cr.tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, dtype=np.float32))
    for t in tensors:
        assert t.grad is not None and t.grad.dtype == np.float32 and t.grad.shape == t.shape
