"""The optimizers users know, each a thin class over one rule in :mod:`chainrule.optim.rules`.

The rules treat every element on its own, so a large parameter is updated in pieces on the
batch pool (:func:`~chainrule.threads.elementwise`), with the result of one call.
"""

from __future__ import annotations

from ..threads import elementwise
from . import rules
from .optimizer import Optimizer, check_non_negative, check_range
from .spec import BETA1, BETA2, EPS, LR, MAXIMIZE, MOMENTUM, WEIGHT_DECAY, Setting


class GD(Optimizer):
    """Plain gradient descent: p <- p - lr * dL/dp.

    With the whole data set as one batch (``batch_size=None`` in ``fit``) this is classic
    gradient descent; with mini-batches it is SGD without momentum.
    """

    settings = (LR,)
    suggested_lr = 0.5

    def __init__(self, params, lr: float = 0.1):
        super().__init__(params, {"lr": lr})

    def update(self, p, g, state, lr, group):
        elementwise(rules.gd_update, p, g, lr=lr)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as PyTorch's ``SGD``.

    g <- g + weight_decay * p
    b <- momentum * b + (1 - dampening) * g        (b <- g on the first step)
    step = g + momentum * b  if nesterov  else  b  (step = g without momentum)
    p <- p - lr * step
    """

    settings = (
        LR,
        MOMENTUM,
        Setting("dampening", 0.0, 1.0, "how much of each new gradient the momentum leaves out"),
        Setting("nesterov", help="look ahead along the momentum before taking the gradient"),
        WEIGHT_DECAY,
    )
    suggested_lr = 0.05
    presets = {"momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9, "nesterov": True}}

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "momentum": momentum,
                "dampening": dampening,
                "nesterov": nesterov,
                "weight_decay": weight_decay,
            },
        )

    def check(self, group):
        check_non_negative("momentum", group["momentum"])
        check_non_negative("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")

    def state_names(self, group):
        return ("momentum_buffer",) if group["momentum"] else ()

    def update(self, p, g, state, lr, group):
        state["step"] += 1
        elementwise(
            rules.sgd_update,
            p,
            g,
            state.get("momentum_buffer"),
            lr=lr,
            momentum=group["momentum"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            weight_decay=group["weight_decay"],
            first_step=state["step"] == 1,
        )


class Adam(Optimizer):
    """Adam, as PyTorch's ``Adam`` (weight decay as L2 added to the gradient).

    g <- g + weight_decay * p
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g^2            (amsgrad: v_max <- max(v_max, v))
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    settings = (
        LR,
        BETA1,
        BETA2,
        EPS,
        WEIGHT_DECAY,
        Setting("amsgrad", help="divide by the largest squared-gradient mean seen so far"),
    )
    suggested_lr = 1e-3

    decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": tuple(betas),
                "eps": eps,
                "weight_decay": weight_decay,
                "amsgrad": amsgrad,
            },
        )

    def check(self, group):
        beta1, beta2 = group["betas"]
        check_range("beta1", beta1, 0.0, 1.0)
        check_range("beta2", beta2, 0.0, 1.0)
        check_non_negative("eps", group["eps"])
        check_non_negative("weight_decay", group["weight_decay"])

    def state_names(self, group):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())

    def update(self, p, g, state, lr, group):
        state["step"] += 1
        elementwise(
            rules.adam_update,
            p,
            g,
            state["exp_avg"],
            state["exp_avg_sq"],
            state.get("max_exp_avg_sq"),
            step=state["step"],
            lr=lr,
            **self._hyper(group),
        )

    def fused_update(self, params, flat, state, lr, group):
        state["step"] += 1
        rules.adam_update_fused(
            params,
            flat.grads,
            state["exp_avg"],
            state["exp_avg_sq"],
            state.get("max_exp_avg_sq"),
            flat.scratch,
            flat.scratch_views,
            step=state["step"],
            lr=lr,
            **self._hyper(group),
        )

    def _hyper(self, group) -> dict:
        beta1, beta2 = group["betas"]
        return {
            "beta1": beta1,
            "beta2": beta2,
            "eps": group["eps"],
            "weight_decay": group["weight_decay"],
            "decoupled": self.decoupled,
            "amsgrad": group["amsgrad"],
        }


class AdamW(Adam):
    """Adam with decoupled weight decay, as PyTorch's ``AdamW``: first p <- p (1 - lr wd), then the
    Adam step without L2 in the gradient. Default ``weight_decay=0.01``."""

    decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop, as PyTorch's ``RMSprop``.

    g <- g + weight_decay * p
    s <- alpha * s + (1 - alpha) * g^2
    centered: a <- alpha * a + (1 - alpha) * g;  s' = s - a^2   (else s' = s)
    d = sqrt(s') + eps
    momentum > 0: b <- momentum * b + g / d;  p <- p - lr * b
    otherwise:    p <- p - lr * g / d
    """

    settings = (
        LR,
        Setting("alpha", 0.0, 1.0, "decay of the squared gradient's running mean"),
        EPS,
        WEIGHT_DECAY,
        MOMENTUM,
        Setting("centered", help="divide by the gradient's variance instead of its square"),
    )
    suggested_lr = 1e-3

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "alpha": alpha,
                "eps": eps,
                "weight_decay": weight_decay,
                "momentum": momentum,
                "centered": centered,
            },
        )

    def check(self, group):
        check_range("alpha", group["alpha"], 0.0, 1.0, high_inclusive=True)
        check_non_negative("eps", group["eps"])
        check_non_negative("momentum", group["momentum"])
        check_non_negative("weight_decay", group["weight_decay"])

    def state_names(self, group):
        names = ("square_avg",)
        names += ("grad_avg",) if group["centered"] else ()
        return names + (("momentum_buffer",) if group["momentum"] else ())

    def update(self, p, g, state, lr, group):
        state["step"] += 1
        elementwise(
            rules.rmsprop_update,
            p,
            g,
            state["square_avg"],
            state.get("grad_avg"),
            state.get("momentum_buffer"),
            lr=lr,
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
        )


class Adagrad(Optimizer):
    """Adagrad, as PyTorch's ``Adagrad``.

    g <- g + weight_decay * p
    lr_t = lr / (1 + (t - 1) * lr_decay)
    S <- S + g^2
    p <- p - lr_t * g / (sqrt(S) + eps)
    """

    settings = (
        LR,
        Setting("lr_decay", 0.0, 1.0, "how fast the learning rate shrinks with the steps"),
        WEIGHT_DECAY,
        Setting("initial_accumulator_value", help="where the sum of squared gradients starts"),
        EPS,
    )
    suggested_lr = 1e-2

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "lr_decay": lr_decay,
                "weight_decay": weight_decay,
                "initial_accumulator_value": initial_accumulator_value,
                "eps": eps,
            },
        )

    def check(self, group):
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_non_negative(name, group[name])

    def state_names(self, group):
        return ("sum",)

    def initial_value(self, name, group):
        return group["initial_accumulator_value"]

    def update(self, p, g, state, lr, group):
        state["step"] += 1
        elementwise(
            rules.adagrad_update,
            p,
            g,
            state["sum"],
            step=state["step"],
            lr=lr,
            lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
        )


class Adadelta(Optimizer):
    """Adadelta, as PyTorch's ``Adadelta``: a step size that adapts per weight, from running
    averages of squared gradients (v) and of squared steps (u).

    g <- g + weight_decay * p                     (g <- -g first if maximize)
    v <- rho * v + (1 - rho) * g^2
    delta = sqrt(u + eps) / sqrt(v + eps) * g
    u <- rho * u + (1 - rho) * delta^2
    p <- p - lr * delta
    """

    settings = (
        LR,
        Setting("rho", 0.0, 1.0, "decay of the running means of squared gradients and steps"),
        EPS,
        WEIGHT_DECAY,
        MAXIMIZE,
    )
    suggested_lr = 1.0

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "rho": rho,
                "eps": eps,
                "weight_decay": weight_decay,
                "maximize": maximize,
            },
        )

    def check(self, group):
        check_range("rho", group["rho"], 0.0, 1.0, high_inclusive=True)
        check_non_negative("eps", group["eps"])
        check_non_negative("weight_decay", group["weight_decay"])

    def state_names(self, group):
        return ("square_avg", "acc_delta")

    def update(self, p, g, state, lr, group):
        state["step"] += 1
        elementwise(
            rules.adadelta_update,
            p,
            g,
            state["square_avg"],
            state["acc_delta"],
            lr=lr,
            rho=group["rho"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )


class Adamax(Optimizer):
    """Adamax, as PyTorch's ``Adamax``: Adam with the running maximum of |g| in place of the
    root mean square.

    g <- g + weight_decay * p                     (g <- -g first if maximize)
    m <- beta1 * m + (1 - beta1) * g
    u <- max(beta2 * u, |g| + eps)
    p <- p - lr / (1 - beta1^t) * m / u
    """

    settings = (LR, BETA1, BETA2, EPS, WEIGHT_DECAY, MAXIMIZE)
    suggested_lr = 2e-3

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": tuple(betas),
                "eps": eps,
                "weight_decay": weight_decay,
                "maximize": maximize,
            },
        )

    def check(self, group):
        check_betas(group)

    def state_names(self, group):
        return ("exp_avg", "exp_inf")

    def update(self, p, g, state, lr, group):
        state["step"] += 1
        beta1, beta2 = group["betas"]
        elementwise(
            rules.adamax_update,
            p,
            g,
            state["exp_avg"],
            state["exp_inf"],
            step=state["step"],
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )


class NAdam(Optimizer):
    """NAdam, as PyTorch's ``NAdam``: Adam whose momentum looks one step ahead (Nesterov), with
    a momentum coefficient that warms up (``momentum_decay``).

    decoupled_weight_decay: p <- p * (1 - lr * weight_decay),  else  g <- g + weight_decay * p
    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));   P <- P * mu_t   (P starts at 1)
    m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2
    d = sqrt(v / (1 - beta2^t)) + eps
    p <- p - lr * (1 - mu_t) / (1 - P) * g / d - lr * mu_{t+1} / (1 - P * mu_{t+1}) * m / d
    """

    settings = (
        LR,
        BETA1,
        BETA2,
        EPS,
        WEIGHT_DECAY,
        Setting(
            "momentum_decay", help="how the look-ahead momentum's weight changes with the steps"
        ),
        Setting(
            "decoupled_weight_decay", help="shrink the weights apart from the gradient (AdamW)"
        ),
        MAXIMIZE,
    )
    suggested_lr = 2e-3

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "betas": tuple(betas),
                "eps": eps,
                "weight_decay": weight_decay,
                "momentum_decay": momentum_decay,
                "decoupled_weight_decay": decoupled_weight_decay,
                "maximize": maximize,
            },
        )

    def check(self, group):
        check_betas(group)
        check_non_negative("momentum_decay", group["momentum_decay"])

    def state_names(self, group):
        return ("exp_avg", "exp_avg_sq", "mu_product")

    def initial_value(self, name, group):
        return 1.0 if name == "mu_product" else 0.0

    def update(self, p, g, state, lr, group):
        state["step"] += 1
        beta1, beta2 = group["betas"]
        elementwise(
            rules.nadam_update,
            p,
            g,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["mu_product"],
            step=state["step"],
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
            decoupled=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )


def check_betas(group: dict) -> None:
    """betas in [0, 1), eps and weight_decay >= 0 (the Adam family's hyper-parameters)."""
    beta1, beta2 = group["betas"]
    check_range("beta1", beta1, 0.0, 1.0)
    check_range("beta2", beta2, 0.0, 1.0)
    check_non_negative("eps", group["eps"])
    check_non_negative("weight_decay", group["weight_decay"])
