"""Recurrent layers, one whole sequence per op: forward through time and backward through time.

Each op runs one layer in one direction over a sequence x of shape (T, N, I) from the initial
state h0 (N, H), with PyTorch's weights: W_ih (G H, I), W_hh (G H, H) and biases (G H,), the G
gates stacked in PyTorch's order (an LSTM with projections also takes W_hr (P, H), and its h is
P wide). It is written for speed:

* the input projection of all T steps is one product, x W_ih^T (T N rows at once);
* each step is one product h W_hh^T for all the gates (and, with projections, one more to
  project the step's h);
* backward walks back through time in NumPy inside the op (no graph node per gate or step) and
  then forms the weight gradients as one product each over all steps (dW = dG^T [x or h_prev]).

``reverse=True`` runs from the last step to the first (the second direction of a bidirectional
layer). ``mask`` (T, N, 1) bool, where given, marks the steps each sequence has (packed sequences
of unequal lengths): at a step outside it the state stays as it was, so the state after the last
step is every sequence's final state, whichever way it runs.
"""

from __future__ import annotations

import contextlib

from ..backend import xp
from ..function import Function
from ..threads import single_threaded_blas

STEP_PRODUCT_FOR_THREADS = 8_000_000
"""Multiply-adds of one step's product (batch x W_hh's size) from which it may use threads."""


def halves(kinds: str, size: int, dtype):
    """Per gate column, 1/2 for a sigmoid gate ('s') and 1 for a tanh gate ('t'): sigmoid(a) =
    tanh(a/2)/2 + 1/2, so scaling a gate's pre-activation (folded into the weights once) lets
    one tanh over all the gates of a step compute every activation, without overflow."""
    return xp.repeat(xp.asarray([0.5 if k == "s" else 1.0 for k in kinds], dtype=dtype), size)


class Recurrence(Function):
    """What the recurrent ops share: the input projection, the time order, the previous states
    and the weight gradients from the per-step gate gradients."""

    @staticmethod
    def project(x, w_ih, bias):
        """x W_ih^T + bias for every step at once: (T, N, I) -> (T, N, G H)."""
        xw = (x.reshape(-1, x.shape[-1]) @ w_ih.T).reshape(*x.shape[:2], w_ih.shape[0])
        if bias is not None:
            xw += bias
        return xw

    @staticmethod
    def step_threads(h0, w_hh):
        """The BLAS threads for the per-step products: one while a step's product is small
        (20 x 200 times 200 x 800: a second thread gains little there, and on a busy machine two
        threads waiting for each other 35 times a sequence took 10x longer), else the threads
        set (``chainrule.set_num_threads``; by default the idle cores, so one on a busy machine):
        20 x 650 times 650 x 2,600 took 1.6 ms on one thread and 1.0 ms on two."""
        if h0.shape[0] * w_hh.size < STEP_PRODUCT_FOR_THREADS:
            return single_threaded_blas()
        return contextlib.nullcontext()

    @staticmethod
    def steps(length: int, reverse: bool) -> range:
        return range(length - 1, -1, -1) if reverse else range(length)

    @staticmethod
    def previous(h0, hs, reverse: bool):
        """The state each step started from: (T, N, H)."""
        if reverse:
            return xp.concatenate([hs[1:], h0[None]])
        return xp.concatenate([h0[None], hs[:-1]])

    def weight_gradients(self, grad_in, grad_hidden, x, h_prev, w_ih, first_weight: int):
        """dx, dW_ih, dW_hh, db_ih, db_hh from the gradients of the input-side and hidden-side
        pre-activations of every step (T, N, G H): one product each over all steps."""
        needs = self.needs_grad
        rows_in = grad_in.reshape(-1, grad_in.shape[-1])
        rows_hidden = grad_hidden.reshape(-1, grad_hidden.shape[-1])
        grad_x = (rows_in @ w_ih).reshape(x.shape) if needs[0] else None  # one product
        grad_w_ih = rows_in.T @ x.reshape(-1, x.shape[-1]) if needs[first_weight] else None
        grad_w_hh = (
            rows_hidden.T @ h_prev.reshape(-1, h_prev.shape[-1])
            if needs[first_weight + 1]
            else None
        )
        biases = needs[first_weight + 2 :]
        grad_b_ih = rows_in.sum(axis=0) if biases and biases[0] else None
        grad_b_hh = rows_hidden.sum(axis=0) if len(biases) > 1 and biases[1] else None
        return grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh


def _both(b_ih, b_hh):
    """The two biases added once (where a cell's formula only ever uses their sum)."""
    return None if b_ih is None else b_ih + b_hh


class ElmanSequence(Recurrence):
    """h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu (``nn.RNN``).
    da_t = (dh_t) act'(a_t),  dh_{t-1} = da_t W_hh.

    Returns every h_t: (T, N, H).
    """

    def forward(
        self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, relu=False, reverse=False, mask=None
    ):
        xw = self.project(x, w_ih, _both(b_ih, b_hh))
        hs = xp.empty((x.shape[0], *h0.shape), dtype=xw.dtype)
        w_hh_t = xp.ascontiguousarray(w_hh.T)  # the step's product reads it row by row
        h = h0
        with self.step_threads(h0, w_hh):  # one product per step
            for t in self.steps(len(x), reverse):
                a = xw[t] + h @ w_hh_t
                new = xp.maximum(a, 0) if relu else xp.tanh(a)
                h = hs[t] = new if mask is None else xp.where(mask[t], new, h)
        self.save(x, h0, w_ih, w_hh, hs, relu, reverse, mask)
        return hs

    def backward(self, grad):
        x, h0, w_ih, w_hh, hs, relu, reverse, mask = self.saved
        grad_a = (hs > 0).astype(hs.dtype) if relu else 1 - hs * hs  # act'(a_t), all steps
        grad_h = xp.zeros_like(h0)
        with self.step_threads(h0, w_hh):  # one product per step
            for t in self.steps(len(x), not reverse):
                grad_h = grad_h + grad[t]
                grad_a[t] *= grad_h
                if mask is not None:
                    grad_a[t] *= mask[t]
                carried = grad_a[t] @ w_hh
                grad_h = carried if mask is None else carried + xp.where(mask[t], 0, grad_h)
        h_prev = self.previous(h0, hs, reverse)
        dx, dw_ih, dw_hh, db_ih, db_hh = self.weight_gradients(grad_a, grad_a, x, h_prev, w_ih, 2)
        return dx, grad_h, dw_ih, dw_hh, db_ih, db_hh


class LSTMSequence(Recurrence):
    """Gates i, f, g, o = sig, sig, tanh, sig of x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;
    c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)  (``nn.LSTM``).
    do = dh tanh(c),  dc += dh o (1 - tanh^2 c),  di = dc g,  df = dc c_{t-1},  dg = dc i,
    dc_{t-1} = dc f,  dh_{t-1} = d[gates] W_hh (each gate's gradient times its activation's slope).

    Returns every h_t and then the last c: (T + 1, N, H).
    """

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False, mask=None):
        size = h0.shape[-1]
        xw, w_scaled, scale, shift = self.scaled_inputs(x, w_ih, w_hh, b_ih, b_hh, size)
        out = xp.empty((x.shape[0] + 1, *h0.shape), dtype=xw.dtype)
        gates = xp.empty_like(xw)  # activated i, f, g, o of every step
        cs, tanh_cs = xp.empty_like(out[:-1]), xp.empty_like(out[:-1])
        h, c = h0, c0
        with self.step_threads(h0, w_hh):  # one product per step
            for t in self.steps(len(x), reverse):
                new_c, o = self.step(gates[t], h, c, xw[t], w_scaled, scale, shift, tanh_cs[t])
                new_h = o * tanh_cs[t]
                if mask is not None:
                    new_c, new_h = xp.where(mask[t], new_c, c), xp.where(mask[t], new_h, h)
                c = cs[t] = new_c
                h = out[t] = new_h
        out[-1] = c
        self.save(x, h0, c0, w_ih, w_hh, out[:-1], cs, tanh_cs, gates, reverse, mask)
        return out

    def backward(self, grad):
        x, h0, c0, w_ih, w_hh, hs, cs, tanh_cs, gates, reverse, mask = self.saved
        size = h0.shape[-1]
        c_prev = self.previous(c0, cs, reverse)
        grad_a, dc_from_h, f = self.gate_slopes(gates, tanh_cs, c_prev, size)
        grad_h, grad_c = xp.zeros_like(h0), grad[-1].copy()
        with self.step_threads(h0, w_hh):  # one product per step
            for t in self.steps(len(x), not reverse):
                grad_h = grad_h + grad[t]
                dc = grad_c + grad_h * dc_from_h[t]
                da = self.scale_gate_gradients(grad_a[t], dc, grad_h)
                grad_h, grad_c = self.carried_back(da, dc, f[t], w_hh, grad_h, grad_c, mask, t)
        h_prev = self.previous(h0, hs, reverse)
        dx, dw_ih, dw_hh, db_ih, db_hh = self.weight_gradients(grad_a, grad_a, x, h_prev, w_ih, 3)
        return dx, grad_h, grad_c, dw_ih, dw_hh, db_ih, db_hh

    # -- what the plain and the projected LSTM share ---------------------------------------------

    def scaled_inputs(self, x, w_ih, w_hh, b_ih, b_hh, size: int) -> tuple:
        """(x W_ih^T + b_ih + b_hh of every step, W_hh^T, scale, shift), the columns of both
        scaled by :func:`halves` once, so that ``step``'s one tanh activates all four gates:
        tanh(scale a) scale + shift is sig(a) for i, f, o (scale = shift = 1/2) and tanh(a)
        for g (scale 1, shift 0)."""
        scale = halves("ssts", size, x.dtype)
        xw = self.project(x, w_ih, _both(b_ih, b_hh))
        xw *= scale
        return xw, xp.ascontiguousarray(w_hh.T) * scale, scale, 1 - scale

    @staticmethod
    def step(gate, h, c, xw_t, w_scaled, scale, shift, tanh_c) -> tuple:
        """One step from (h_{t-1}, c_{t-1}): the activated gates into ``gate`` (N, 4 H) with one
        product, tanh(c_t) into ``tanh_c``; returns (c_t, gate o)."""
        xp.matmul(h, w_scaled, out=gate)
        gate += xw_t
        xp.tanh(gate, out=gate)
        gate *= scale
        gate += shift
        size = c.shape[-1]
        i, f, g, o = (gate[:, k * size : (k + 1) * size] for k in range(4))
        new_c = f * c
        new_c += i * g
        xp.tanh(new_c, out=tanh_c)
        return new_c, o

    @staticmethod
    def gate_slopes(gates, tanh_cs, c_prev, size: int) -> tuple:
        """For all steps at once: what multiplies dc (gates i, f, g) or dL/d(o tanh c) (gate o)
        in each gate's pre-activation gradient (T, N, 4 H), the slope of o tanh(c) in c, and
        gate f; the loop back through time then only scales them by each step's dc and dh."""
        i, f, g, o = (gates[..., k * size : (k + 1) * size] for k in range(4))
        grad_a = xp.empty_like(gates)
        grad_a[..., :size] = g * i * (1 - i)
        grad_a[..., size : 2 * size] = c_prev * f * (1 - f)
        grad_a[..., 2 * size : 3 * size] = i * (1 - g * g)
        grad_a[..., 3 * size :] = tanh_cs * o * (1 - o)
        return grad_a, o * (1 - tanh_cs * tanh_cs), f

    @staticmethod
    def scale_gate_gradients(da, dc, dh):
        """One step's gate gradients (N, 4 H) in place: gates i, f, g by dc, gate o by dh."""
        per_gate = da.reshape(da.shape[0], 4, dc.shape[-1])
        per_gate[:, :3] *= dc[:, None]
        per_gate[:, 3] *= dh
        return da

    @staticmethod
    def carried_back(da, dc, f, w_hh, grad_h, grad_c, mask, t: int) -> tuple:
        """(dL/dh_{t-1}, dL/dc_{t-1}) from step t's gate gradients ``da`` and its dc; where
        ``mask`` says the step is past a sequence's end, the state was only passed on, and so
        are ``grad_h`` and ``grad_c`` (the step's ``da`` is zeroed in place)."""
        if mask is None:
            return da @ w_hh, dc * f
        da *= mask[t]
        return da @ w_hh + xp.where(mask[t], 0, grad_h), xp.where(mask[t], dc * f, grad_c)


class ProjectedLSTMSequence(LSTMSequence):
    """Gates i, f, g, o = sig, sig, tanh, sig of x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;
    c_t = f c_{t-1} + i g,  r_t = o tanh(c_t),  h_t = r_t W_hr^T  (``nn.LSTM(proj_size=P)``).
    dr = dh W_hr,  dW_hr = sum_t dh_t^T r_t,  do = dr tanh(c),  dc += dr o (1 - tanh^2 c),
    di = dc g,  df = dc c_{t-1},  dg = dc i,  dc_{t-1} = dc f,  dh_{t-1} = d[gates] W_hh.

    h is P wide (h0 (N, P), W_hh (4 H, P)), c is H wide; W_hr (P, H) comes after the biases, as
    PyTorch orders them (the biases may be None). Returns every h_t and c_t side by side:
    (T, N, P + H), so that a gradient may reach any step's c.
    """

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse=False, mask=None):
        width, size = h0.shape[-1], c0.shape[-1]
        xw, w_scaled, scale, shift = self.scaled_inputs(x, w_ih, w_hh, b_ih, b_hh, size)
        w_hr_t = xp.ascontiguousarray(w_hr.T)
        out = xp.empty((x.shape[0], h0.shape[0], width + size), dtype=xw.dtype)  # h_t, c_t
        gates = xp.empty_like(xw)  # activated i, f, g, o of every step
        tanh_cs = xp.empty((*out.shape[:2], size), dtype=xw.dtype)
        h, c = h0, c0
        with self.step_threads(h0, w_hh):  # two products per step
            for t in self.steps(len(x), reverse):
                new_c, o = self.step(gates[t], h, c, xw[t], w_scaled, scale, shift, tanh_cs[t])
                new_h = (o * tanh_cs[t]) @ w_hr_t
                if mask is not None:
                    new_c, new_h = xp.where(mask[t], new_c, c), xp.where(mask[t], new_h, h)
                c = out[t, :, width:] = new_c
                h = out[t, :, :width] = new_h
        self.save(x, h0, c0, w_ih, w_hh, w_hr, out, gates, tanh_cs, reverse, mask)
        return out

    def backward(self, grad):
        x, h0, c0, w_ih, w_hh, w_hr, out, gates, tanh_cs, reverse, mask = self.saved
        width, size = h0.shape[-1], c0.shape[-1]
        hs, cs = out[..., :width], out[..., width:]
        c_prev = self.previous(c0, cs, reverse)
        grad_a, dc_from_r, f = self.gate_slopes(gates, tanh_cs, c_prev, size)
        grad_hs = xp.empty_like(hs)  # dL/dh_t of every step, for dW_hr
        grad_h, grad_c = xp.zeros_like(h0), xp.zeros_like(c0)
        with self.step_threads(h0, w_hh):  # two products per step
            for t in self.steps(len(x), not reverse):
                grad_h = grad_hs[t] = grad_h + grad[t, :, :width]
                grad_c = grad_c + grad[t, :, width:]
                grad_r = grad_h @ w_hr  # through the projection, to o tanh(c_t)
                dc = grad_c + grad_r * dc_from_r[t]
                da = self.scale_gate_gradients(grad_a[t], dc, grad_r)
                grad_h, grad_c = self.carried_back(da, dc, f[t], w_hh, grad_h, grad_c, mask, t)
        h_prev = self.previous(h0, hs, reverse)
        dx, dw_ih, dw_hh, db_ih, db_hh = self.weight_gradients(grad_a, grad_a, x, h_prev, w_ih, 3)
        grad_w_hr = None
        if self.needs_grad[7]:
            unprojected = gates[..., 3 * size :] * tanh_cs  # o tanh(c_t) of every step
            grad_w_hr = self.projection_gradient(grad_hs, unprojected, mask)
        return dx, grad_h, grad_c, dw_ih, dw_hh, db_ih, db_hh, grad_w_hr

    @staticmethod
    def projection_gradient(grad_hs, unprojected, mask):
        """dW_hr = sum_t dh_t^T r_t over every step of every sequence: one product (T N rows)."""
        if mask is not None:
            grad_hs *= mask  # a step past a sequence's end kept h_{t-1}: no projection there
        rows = grad_hs.reshape(-1, grad_hs.shape[-1])
        return rows.T @ unprojected.reshape(-1, unprojected.shape[-1])


class GRUSequence(Recurrence):
    """r, z = sig(x_t W_i[r,z]^T + b_i[r,z] + h W_h[r,z]^T + b_h[r,z]),
    n = tanh(x_t W_in^T + b_in + r (h W_hn^T + b_hn)),  h_t = (1 - z) n + z h_{t-1}  (``nn.GRU``).
    dn = dh (1 - z),  dz = dh (h_{t-1} - n),  dr = dn (1 - n^2) (h W_hn^T + b_hn),
    dh_{t-1} = dh z + d[hidden-side pre-activations] W_hh (where n's is r dn (1 - n^2)).

    Returns every h_t: (T, N, H).
    """

    def forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, reverse=False, mask=None):
        size = h0.shape[-1]
        scale = halves("sst", size, x.dtype)
        xw = self.project(x, w_ih, b_ih)
        xw[..., : 2 * size] *= 0.5
        w_scaled = xp.ascontiguousarray(w_hh.T) * scale
        b_scaled = None if b_hh is None else b_hh * scale
        hs = xp.empty((x.shape[0], *h0.shape), dtype=xw.dtype)
        activations = xp.empty((*xw.shape[:2], 4 * size), dtype=xw.dtype)  # r, z, n, h W_hn^T
        hw = xp.empty(xw.shape[1:], dtype=xw.dtype)
        h = h0
        with self.step_threads(h0, w_hh):  # one product per step
            for t in self.steps(len(x), reverse):
                xp.matmul(h, w_scaled, out=hw)
                if b_scaled is not None:
                    hw += b_scaled
                saved = activations[t]
                rz, n, hn = (
                    saved[:, : 2 * size],
                    saved[:, 2 * size : 3 * size],
                    saved[:, 3 * size :],
                )
                xp.add(xw[t, :, : 2 * size], hw[:, : 2 * size], out=rz)
                xp.tanh(rz, out=rz)
                rz *= 0.5
                rz += 0.5
                r, z = rz[:, :size], rz[:, size:]
                hn[...] = hw[:, 2 * size :]
                xp.multiply(r, hn, out=n)
                n += xw[t, :, 2 * size :]
                xp.tanh(n, out=n)
                new = h - n
                new *= z
                new += n
                h = hs[t] = new if mask is None else xp.where(mask[t], new, h)
        self.save(x, h0, w_ih, w_hh, hs, activations, reverse, mask)
        return hs

    def backward(self, grad):
        x, h0, w_ih, w_hh, hs, activations, reverse, mask = self.saved
        size, batch = h0.shape[-1], hs.shape[1]
        h_prev = self.previous(h0, hs, reverse)
        r, z, n, hn = (activations[..., k * size : (k + 1) * size] for k in range(4))
        # what multiplies dn's pre-activation (gate r), dh (gate z) and dh (gate n) in each
        # input-side gradient, for all steps at once; the loop scales them by the step's dh
        grad_in = xp.empty((*hs.shape[:2], 3 * size), dtype=hs.dtype)
        grad_in[..., :size] = hn * r * (1 - r)
        grad_in[..., size : 2 * size] = (h_prev - n) * z * (1 - z)
        grad_in[..., 2 * size :] = (1 - z) * (1 - n * n)
        grad_hidden = xp.empty_like(grad_in)
        grad_h = xp.zeros_like(h0)
        with self.step_threads(h0, w_hh):  # one product per step
            for t in self.steps(len(x), not reverse):
                grad_h = grad_h + grad[t]
                din = grad_in[t].reshape(batch, 3, size)
                din[:, 2] *= grad_h
                din[:, 0] *= din[:, 2]
                din[:, 1] *= grad_h
                if mask is not None:
                    grad_in[t] *= mask[t]
                dhid = grad_hidden[t].reshape(batch, 3, size)
                dhid[:, :2] = din[:, :2]
                xp.multiply(din[:, 2], r[t], out=dhid[:, 2])
                carried = (
                    grad_h * z[t] if mask is None else xp.where(mask[t], grad_h * z[t], grad_h)
                )
                grad_h = carried + grad_hidden[t] @ w_hh
        dx, dw_ih, dw_hh, db_ih, db_hh = self.weight_gradients(
            grad_in, grad_hidden, x, h_prev, w_ih, 2
        )
        return dx, grad_h, dw_ih, dw_hh, db_ih, db_hh
