"""The update rules, each written once as a function over arrays.

A rule receives the parameter ``p``, its gradient ``g`` and its state arrays, and updates ``p`` and
the state in place (no objects, no hidden state, no allocation it can avoid). The optimizer classes
and the lens' optimizer race on 2-D surfaces call these same functions. Semantics follow PyTorch's
optimizers of the same names (``foreach=False`` variants).
"""

from __future__ import annotations

from ..backend import xp
from ..threads import elementwise


def gd_update(p, g, *, lr: float) -> None:
    """Gradient descent: p <- p - lr g."""
    p -= lr * g


def sgd_update(
    p,
    g,
    momentum_buffer,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    first_step: bool = False,
) -> None:
    """SGD with momentum:  g <- g + wd p;  b <- mu b + (1 - dampening) g  (b = g at step 1);
    step = g + mu b (Nesterov) or b;  p <- p - lr step."""
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        if first_step:
            momentum_buffer[...] = g
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * g
        g = g + momentum * momentum_buffer if nesterov else momentum_buffer
    p -= lr * g


def adam_update(
    p,
    g,
    m,
    v,
    v_max,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    amsgrad: bool = False,
) -> None:
    """Adam (and AdamW when ``decoupled``), the textbook rule:

    AdamW: p <- p (1 - lr wd);  Adam: g <- g + wd p;
    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2;   (AMSGrad: v_max <- max(v_max, v))
    m^ = m / (1 - b1^t);   v^ = v / (1 - b2^t);   p <- p - lr m^ / (sqrt(v^) + eps).
    """
    if weight_decay:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    if amsgrad:
        xp.maximum(v_max, v, out=v_max)
        v = v_max
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    p -= lr * m_hat / (xp.sqrt(v_hat) + eps)


def adam_update_fused(
    params: list,
    g,
    m,
    v,
    v_max,
    scratch,
    scratch_views: list,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    decoupled: bool = False,
    amsgrad: bool = False,
) -> None:
    """:func:`adam_update` for a whole parameter group at once, tested equal to it.

    ``g``, ``m``, ``v`` (``v_max``) and ``scratch`` are flat arrays over the group; ``params`` are
    the parameter arrays and ``scratch_views`` their slices of ``scratch``. The step is computed
    in ``scratch`` with the constants folded, so that it takes five passes over memory and no
    temporary: p += m / (sqrt(v) k1 + k2), k1 = -(1 - b1^t) / (lr sqrt(1 - b2^t)),
    k2 = -(1 - b1^t) eps / lr; then each parameter adds its slice. Large arrays are done in
    pieces on the batch pool (:func:`~chainrule.threads.elementwise`).
    """
    if weight_decay:
        if decoupled:
            for p in params:
                p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * xp.concatenate([p.ravel() for p in params])
    constants = dict(step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    v_max = v_max if amsgrad else None
    elementwise(_adam_moments_and_step, g, m, v, v_max, scratch, **constants)
    if lr == 0:
        return
    for p, step_of_p in zip(params, scratch_views):
        elementwise(xp.add, p, step_of_p, p)


def _adam_moments_and_step(g, m, v, v_max, s, *, step, lr, beta1, beta2, eps) -> None:
    """The flat part of :func:`adam_update_fused`: the moments, and the step into ``s``."""
    m *= beta1
    xp.multiply(g, 1 - beta1, out=s)
    m += s
    v *= beta2
    xp.multiply(g, g, out=s)
    s *= 1 - beta2
    v += s
    if v_max is not None:
        xp.maximum(v_max, v, out=v_max)
    if lr == 0:
        return
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    xp.sqrt(v if v_max is None else v_max, out=s)
    s *= -bias_correction1 / (lr * bias_correction2_sqrt)
    s -= bias_correction1 * eps / lr
    xp.divide(m, s, out=s)


def rmsprop_update(
    p,
    g,
    square_avg,
    grad_avg,
    momentum_buffer,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> None:
    """RMSprop:  g <- g + wd p;  s <- alpha s + (1 - alpha) g^2;
    (centered: a <- alpha a + (1 - alpha) g;  s' = s - a^2);   d = sqrt(s') + eps;
    with momentum: b <- mu b + g / d, p <- p - lr b;  else p <- p - lr g / d."""
    if weight_decay:
        g = g + weight_decay * p
    square_avg *= alpha
    square_avg += (1 - alpha) * (g * g)
    if centered:
        grad_avg *= alpha
        grad_avg += (1 - alpha) * g
        denom = xp.sqrt(square_avg - grad_avg * grad_avg)
    else:
        denom = xp.sqrt(square_avg)
    denom += eps
    if momentum:
        momentum_buffer *= momentum
        momentum_buffer += g / denom
        p -= lr * momentum_buffer
    else:
        p -= lr * (g / denom)


def adagrad_update(
    p,
    g,
    state_sum,
    *,
    step: int,
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
) -> None:
    """Adagrad:  g <- g + wd p;  lr_t = lr / (1 + (t - 1) lr_decay);  S <- S + g^2;
    p <- p - lr_t g / (sqrt(S) + eps)."""
    if weight_decay:
        g = g + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += g * g
    p -= clr * (g / (xp.sqrt(state_sum) + eps))


def adadelta_update(
    p,
    g,
    square_avg,
    acc_delta,
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    """Adadelta (Zeiler, 2012):  g <- g + wd p;  v <- rho v + (1 - rho) g^2;
    d = sqrt(u + eps) / sqrt(v + eps) g;  u <- rho u + (1 - rho) d^2;  p <- p - lr d."""
    if maximize:
        g = -g
    if weight_decay:
        g = g + weight_decay * p
    square_avg *= rho
    square_avg += (1 - rho) * g * g
    delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * g
    acc_delta *= rho
    acc_delta += (1 - rho) * delta * delta
    p -= lr * delta


def adamax_update(
    p,
    g,
    exp_avg,
    exp_inf,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> None:
    """Adamax (Adam with the infinity norm):  g <- g + wd p;  m <- b1 m + (1 - b1) g;
    u <- max(b2 u, |g| + eps);  p <- p - lr / (1 - b1^t) m / u."""
    if maximize:
        g = -g
    if weight_decay:
        g = g + weight_decay * p
    exp_avg *= beta1
    exp_avg += (1 - beta1) * g
    exp_inf *= beta2
    xp.maximum(exp_inf, xp.abs(g) + eps, out=exp_inf)
    p -= lr / (1 - beta1**step) * (exp_avg / exp_inf)


def nadam_update(
    p,
    g,
    exp_avg,
    exp_avg_sq,
    mu_product,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    momentum_decay: float = 4e-3,
    decoupled: bool = False,
    maximize: bool = False,
) -> None:
    """NAdam (Adam with Nesterov momentum, Dozat 2016), as PyTorch's:

    decoupled: p <- p (1 - lr wd), else g <- g + wd p;
    mu_t = b1 (1 - 0.5 * 0.96^(t psi));  P <- P mu_t  (P: the product of all mu so far);
    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  d = sqrt(v / (1 - b2^t)) + eps;
    p <- p - lr (1 - mu_t) / (1 - P) g / d - lr mu_{t+1} / (1 - P mu_{t+1}) m / d.

    ``mu_product`` is P, an array like ``p`` whose values are all equal (the optimizer keeps
    its state as arrays shaped like the parameter).
    """
    if maximize:
        g = -g
    if weight_decay:
        if decoupled:
            p *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * p
    mu = beta1 * (1 - 0.5 * 0.96 ** (step * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
    mu_product *= mu
    exp_avg *= beta1
    exp_avg += (1 - beta1) * g
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    denom = xp.sqrt(exp_avg_sq / (1 - beta2**step)) + eps
    p -= lr * (1 - mu) / (1 - mu_product) * (g / denom)
    p -= lr * mu_next / (1 - mu_product * mu_next) * (exp_avg / denom)
