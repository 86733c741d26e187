"""Attention and the Transformer family against PyTorch: the same weights (state dicts copied
both ways), the same outputs and gradients (float64 to 1e-10, float32 to 1e-5 of the largest
value), every mask PyTorch takes; the fused op's gradient by finite differences; dropout by
its statistics; bad inputs refused in one line."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F
from chainrule.ops.attention import ScaledDotProductAttention

torch = pytest.importorskip("torch", reason="the attention layers are checked against PyTorch")
pytestmark = [  # PyTorch's advice about its own fast paths and mask types (the oracle's)
    pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning"),
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
]

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-5}
TORCH_TYPE = {np.float64: torch.float64, np.float32: torch.float32}


def assert_close(ours, theirs, dtype, what: str) -> None:
    """Equal within the dtype's tolerance, measured against the largest value (as the
    conformance suite measures)."""
    ours = ours.detach().numpy() if isinstance(ours, cr.Tensor) else np.asarray(ours)
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, what
    tol = TOLERANCE[dtype]
    scale = float(np.max(np.abs(theirs[np.isfinite(theirs)]), initial=1.0))
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale, err_msg=what)


def same_weights(ours, theirs, torch_to_chainrule: bool) -> None:
    """Copy one model's state dict into the other (same names, same order)."""
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if torch_to_chainrule:
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    else:
        theirs.load_state_dict(
            {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
        )


def as_torch(value):
    return torch.from_numpy(value) if isinstance(value, np.ndarray) else value


def check_against_pytorch(ours, theirs, inputs, dtype, direction=True, **call):
    """The same weights, inputs and upstream gradient through both modules: outputs (and the
    attention weights, if returned), the inputs' and every parameter's gradients agree."""
    ours.to(dtype)
    theirs.to(TORCH_TYPE[dtype])
    same_weights(ours, theirs, direction)
    mine = [cr.tensor(a.astype(dtype), requires_grad=True) for a in inputs]
    reference = [torch.tensor(a.astype(dtype), requires_grad=True) for a in inputs]
    out = ours(*mine, **call)
    expected = theirs(*reference, **{k: as_torch(v) for k, v in call.items()})
    out, weights = out if isinstance(out, tuple) else (out, None)
    expected, expected_weights = expected if isinstance(expected, tuple) else (expected, None)
    assert_close(out, expected, dtype, "output")
    upstream = np.random.default_rng(1).normal(size=expected.shape).astype(dtype)
    loss, their_loss = (out * cr.tensor(upstream)).sum(), (expected * torch.tensor(upstream)).sum()
    if expected_weights is not None:
        assert_close(weights, expected_weights, dtype, "attention weights")
        loss, their_loss = (
            loss + (weights * weights).sum(),
            their_loss + (expected_weights**2).sum(),
        )
    else:
        assert weights is None
    loss.backward()
    their_loss.backward()
    for k, (a, b) in enumerate(zip(mine, reference)):
        assert_close(a.grad, b.grad, dtype, f"gradient of input {k}")
    grads = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert_close(grads[name].grad, p.grad, dtype, f"gradient of {name}")


def normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def bools(*shape, p=0.3, seed=2):
    """A boolean mask, True with probability p, never True across a whole last axis."""
    mask = np.random.default_rng(seed).random(shape) < p
    mask[..., 0] = False
    return mask


# -- scaled_dot_product_attention -----------------------------------------------------------------

SDPA_CASES = {
    "plain": {},
    "boolean mask": {"attn_mask": bools(4, 6) == 0},  # True: may attend (PyTorch's SDPA rule)
    "float mask, per head": {"attn_mask": normal(3, 4, 6)},
    "causal": {"is_causal": True},
    "scale": {"scale": 0.3},
    "a query that sees no key": {"attn_mask": np.arange(6) < np.array([[0], [1], [3], [6]])},
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", SDPA_CASES)
def test_scaled_dot_product_attention_matches_pytorch(name, dtype):
    q, k, v = normal(2, 3, 4, 5), normal(2, 3, 6, 5, seed=1), normal(1, 3, 6, 7, seed=2)
    kwargs = SDPA_CASES[name]
    ours = [cr.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v)]
    theirs = [torch.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v)]
    mask = kwargs.get("attn_mask")
    if mask is not None and mask.dtype.kind == "f":
        mask = mask.astype(dtype)
    call = kwargs | ({} if mask is None else {"attn_mask": mask})
    out = F.scaled_dot_product_attention(*ours, **call)
    expected = torch.nn.functional.scaled_dot_product_attention(
        *theirs, **{k: as_torch(v) for k, v in call.items()}
    )
    assert_close(out, expected, dtype, "output")
    upstream = normal(*expected.shape, seed=3).astype(dtype)
    out.backward(cr.tensor(upstream))
    expected.backward(torch.tensor(upstream))
    for a, b, what in zip(ours, theirs, "qkv"):
        assert_close(a.grad, b.grad, dtype, f"gradient of {what}")


def test_a_float_mask_gets_its_gradient_and_grouped_query_heads_are_shared():
    q, k, v, m = (
        normal(2, 4, 3, 5),
        normal(2, 2, 6, 5, seed=1),
        normal(2, 2, 6, 3, seed=2),
        normal(3, 6, seed=4),
    )
    ours = [cr.tensor(a, requires_grad=True) for a in (q, k, v, m)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v, m)]
    out = F.scaled_dot_product_attention(*ours[:3], attn_mask=ours[3], enable_gqa=True)
    expected = torch.nn.functional.scaled_dot_product_attention(
        *theirs[:3], attn_mask=theirs[3], enable_gqa=True
    )
    assert_close(out, expected, np.float64, "output")
    out.sum().backward()
    expected.sum().backward()
    for a, b, what in zip(ours, theirs, ["q", "k", "v", "mask"]):
        assert_close(a.grad, b.grad, np.float64, f"gradient of {what}")


def test_the_fused_op_passes_gradcheck_with_a_mask_and_dropout():
    rng = np.random.default_rng(5)
    keep = (rng.random((2, 3, 4)) > 0.3) / 0.7  # a fixed dropout draw
    tensors = [
        cr.tensor(normal(*s, seed=i), requires_grad=True)
        for i, s in enumerate([(2, 3, 5), (2, 4, 5), (2, 4, 2), (3, 4)])
    ]
    report = cr.gradcheck(
        lambda q, k, v, m: ScaledDotProductAttention.apply(q, k, v, m, scale=0.4, keep=keep),
        *tensors,
    )
    assert report.passed


def test_attention_dropout_keeps_the_expected_weight():
    """Dropping weights with p and scaling the rest by 1/(1-p) keeps each output's expectation:
    with values of 1, every output is 1 on average, and about p of the terms are dropped."""
    cr.manual_seed(0)
    q, k = cr.randn(64, 8, 4, dtype=cr.float64), cr.randn(64, 32, 4, dtype=cr.float64)
    v = cr.ones(64, 32, 3, dtype=cr.float64)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    assert out.shape == (64, 8, 3)
    assert abs(out.numpy().mean() - 1) < 0.05
    assert 0.1 < out.numpy().std() < 1
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v).numpy(), 1.0)
    attention = nn.MultiheadAttention(4, 2, dropout=0.4, batch_first=True).double()
    _, weights = attention(q, q, q, average_attn_weights=False)
    assert abs((weights.detach().numpy() == 0).mean() - 0.4) < 0.05
    attention.eval()
    out, weights = attention(q, q, q)
    np.testing.assert_allclose(weights.detach().numpy().sum(-1), 1.0)


# -- MultiheadAttention ---------------------------------------------------------------------------

L, S, N, E = 4, 5, 2, 8
MHA_CASES = {
    "self-attention, weights averaged": ({}, {}),
    "batch_first, no weights": ({"batch_first": True}, {"need_weights": False}),
    "weights per head, boolean key padding": (
        {"batch_first": True},
        {"average_attn_weights": False, "key_padding_mask": bools(N, S)},
    ),
    "boolean attn_mask and float key padding": (
        {},
        {"attn_mask": bools(L, S, seed=3), "key_padding_mask": normal(N, S, seed=4)},
    ),
    "float attn_mask per head, no weights": (
        {},
        {"attn_mask": normal(N * 2, L, S, seed=5), "need_weights": False},
    ),
    "causal hint with its mask": (
        {"batch_first": True},
        {"attn_mask": np.triu(np.ones((L, S), bool), 1), "is_causal": True, "need_weights": False},
    ),
    "bias_k, bias_v, zero attention": (
        {"add_bias_kv": True, "add_zero_attn": True},
        {"attn_mask": bools(L, S, seed=6), "key_padding_mask": bools(N, S, seed=7)},
    ),
    "kdim, vdim, no bias": ({"kdim": 3, "vdim": 6, "bias": False}, {}),
}


def mha_inputs(config, unbatched=False):
    kdim, vdim = config.get("kdim", E), config.get("vdim", E)
    if unbatched:
        return [normal(L, E), normal(S, kdim, seed=1), normal(S, vdim, seed=2)]
    first = config.get("batch_first", False)
    shape = (lambda n, d: (N, n, d)) if first else (lambda n, d: (n, N, d))
    return [normal(*shape(L, E)), normal(*shape(S, kdim), seed=1), normal(*shape(S, vdim), seed=2)]


@pytest.mark.parametrize("torch_to_chainrule", [True, False], ids=["from torch", "to torch"])
@pytest.mark.parametrize("name", MHA_CASES)
def test_multihead_attention_matches_pytorch(name, torch_to_chainrule):
    config, call = MHA_CASES[name]
    check_against_pytorch(
        nn.MultiheadAttention(E, 2, **config),
        torch.nn.MultiheadAttention(E, 2, **config),
        mha_inputs(config),
        np.float64,
        torch_to_chainrule,
        **call,
    )


@pytest.mark.parametrize("call", [{}, {"need_weights": False, "attn_mask": bools(L, S)}])
def test_multihead_attention_unbatched_and_float32(call):
    for dtype in (np.float64, np.float32):
        check_against_pytorch(
            nn.MultiheadAttention(E, 4),
            torch.nn.MultiheadAttention(E, 4),
            mha_inputs({}, True),
            dtype,
            **call,
        )


def test_multihead_attention_starts_as_pytorchs_does():
    """Xavier-uniform projections, zero biases: the same statistics, not the same numbers."""
    cr.manual_seed(0)
    layer = nn.MultiheadAttention(64, 4, add_bias_kv=True)
    bound = np.sqrt(6 / (64 + 3 * 64))  # fans of the packed (3E, E) matrix
    w = layer.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert (
        not layer.in_proj_bias.detach().numpy().any()
        and not layer.out_proj.bias.detach().numpy().any()
    )
    assert layer.bias_k.shape == (1, 1, 64) and layer.q_proj_weight is None


# -- the Transformer family -----------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_and_decoder_layers_match_pytorch(norm_first, activation, batch_first):
    config = dict(d_model=E, nhead=2, dim_feedforward=12, dropout=0.0, activation=activation)
    config |= dict(norm_first=norm_first, batch_first=batch_first)
    src = normal(N, S, E) if batch_first else normal(S, N, E)
    tgt = normal(N, L, E, seed=1) if batch_first else normal(L, N, E, seed=1)
    check_against_pytorch(
        nn.TransformerEncoderLayer(**config),
        torch.nn.TransformerEncoderLayer(**config),
        [src],
        np.float64,
        src_mask=bools(S, S),
        src_key_padding_mask=bools(N, S, seed=3),
    )
    check_against_pytorch(
        nn.TransformerDecoderLayer(**config),
        torch.nn.TransformerDecoderLayer(**config),
        [tgt, src],
        np.float64,
        batch_first,
        tgt_mask=np.triu(np.ones((L, L), bool), 1),
        memory_key_padding_mask=bools(N, S, seed=4),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stacks_and_the_whole_transformer_match_pytorch(dtype):
    def layers(lib, kind):
        return getattr(lib.nn, kind)(E, 2, 12, 0.0, "gelu", bias=False)

    src, tgt = normal(S, N, E), normal(L, N, E, seed=1)
    check_against_pytorch(
        nn.TransformerEncoder(layers(cr, "TransformerEncoderLayer"), 2, nn.LayerNorm(E)),
        torch.nn.TransformerEncoder(
            layers(torch, "TransformerEncoderLayer"),
            2,
            torch.nn.LayerNorm(E),
            enable_nested_tensor=False,
        ),
        [src],
        dtype,
        mask=np.triu(np.full((S, S), -np.inf), 1).astype(dtype),
    )
    check_against_pytorch(
        nn.TransformerDecoder(layers(cr, "TransformerDecoderLayer"), 2),
        torch.nn.TransformerDecoder(layers(torch, "TransformerDecoderLayer"), 2),
        [tgt, src],
        dtype,
        False,
        tgt_key_padding_mask=bools(N, L),
    )
    mask = nn.Transformer.generate_square_subsequent_mask(L, dtype=dtype)
    np.testing.assert_array_equal(
        mask.numpy(),
        torch.nn.Transformer.generate_square_subsequent_mask(L, dtype=TORCH_TYPE[dtype]).numpy(),
    )
    check_against_pytorch(
        nn.Transformer(E, 2, 2, 1, 12, 0.0, norm_first=True),
        torch.nn.Transformer(E, 2, 2, 1, 12, 0.0, norm_first=True),
        [src, tgt],
        dtype,
        tgt_mask=mask.numpy(),
        src_key_padding_mask=bools(N, S),
        memory_key_padding_mask=bools(N, S),
    )


def test_transformer_subclassed_as_in_the_word_language_model():
    """PyTorch's example replaces the decoder by a Linear after building the Transformer: the
    state dict keeps PyTorch's names and order."""

    def subclass(lib):
        class Model(lib.nn.Transformer):
            def __init__(self):
                super().__init__(d_model=8, nhead=2, dim_feedforward=12, num_encoder_layers=1)
                self.decoder = lib.nn.Linear(8, 3)

            def forward(self, src):
                return self.decoder(self.encoder(src))

        return Model()

    ours, theirs = subclass(cr), subclass(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours(cr.randn(4, 2, 8)).shape == (4, 2, 3)


def test_activation_given_as_a_module_or_a_function():
    """PyTorch takes 'relu', 'gelu', F.relu, nn.GELU() or any callable; a model file can name
    relu and gelu only, and says so for anything else."""
    x = cr.randn(5, 2, 8)
    by_name = nn.TransformerEncoderLayer(8, 2, 16, 0.0, "gelu")
    as_module = nn.TransformerEncoderLayer(8, 2, 16, 0.0, nn.GELU())
    as_module.load_state_dict(by_name.state_dict())
    np.testing.assert_array_equal(as_module(x).detach().numpy(), by_name(x).detach().numpy())
    assert as_module.config()["activation"] == "gelu"
    assert nn.TransformerDecoderLayer(8, 2, activation=F.relu).config()["activation"] == "relu"
    custom = nn.TransformerEncoderLayer(8, 2, activation=F.tanh)
    assert custom(x).shape == (5, 2, 8)
    with pytest.raises(NotImplementedError, match="only 'relu' and 'gelu'"):
        custom.config()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.MultiheadAttention(10, 3), "multiple of num_heads"),
        (lambda: nn.MultiheadAttention(8, 2, dropout=1.0), "dropout"),
        (lambda: nn.TransformerEncoderLayer(8, 2, activation="tanh"), "'relu' or 'gelu'"),
        (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), -1), "num_layers"),
    ],
)
def test_bad_settings_are_refused_in_one_line(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a, x: a(x, x[:, :, :4], x), "last dimensions 8, 8, 8"),
        (lambda a, x: a(x, x, x, attn_mask=np.zeros((3, 3), bool)), r"attn_mask of shape \(3, 3\)"),
        (lambda a, x: a(x, x, x, key_padding_mask=np.zeros((4, 5), bool)), "key_padding_mask"),
        (lambda a, x: a(x, x, x, is_causal=True), "is_causal=True needs attn_mask"),
        (lambda a, x: a(x, x, x, attn_mask=np.zeros((5, 5), np.int64)), "boolean or floating"),
    ],
)
def test_bad_inputs_are_refused_in_one_line(call, message):
    attention = nn.MultiheadAttention(8, 2)
    with pytest.raises((ValueError, TypeError), match=message):
        call(attention, cr.randn(5, 2, 8))
    with pytest.raises(ValueError, match="give attn_mask or is_causal"):
        F.scaled_dot_product_attention(
            *[cr.randn(2, 3, 4)] * 3, attn_mask=np.ones((3, 3), bool), is_causal=True
        )
