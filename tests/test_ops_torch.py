"""Values and gradients of every op against PyTorch (float64, relative tolerance 1e-6)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from op_table import CASES

torch = pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")

CHECKED = [c for c in CASES]


@pytest.mark.parametrize("case", CHECKED, ids=[c.name for c in CHECKED])
@given(data=st.data())
def test_op_matches_pytorch(case, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    arrays, fn, torch_fn = case.build(data.draw, rng)
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(
        out.detach().numpy(), expected.detach().numpy(), rtol=1e-6, atol=1e-12
    )
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=1e-6, atol=1e-12)
