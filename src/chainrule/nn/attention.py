"""Multi-head attention, as PyTorch's ``nn.MultiheadAttention`` (same arguments, parameter names,
masks and numerics).

Each head h attends with its own slice of the projections:
head_h = softmax(q_h k_h^T / sqrt(d) + mask) v_h,  q_h = (query W_q^T + b_q)[..., h d:(h+1) d],
and the heads, side by side, go through ``out_proj``. With ``need_weights=False`` the heads use the
fused :func:`~chainrule.nn.functional.scaled_dot_product_attention`; with ``need_weights=True``
(the default, as in PyTorch) the weights are computed op by op so that they can be returned.
"""

from __future__ import annotations

from .. import api
from ..backend import xp
from ..devices import check_device
from ..dtypes import as_dtype, get_default_dtype
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Linear
from .module import Module, Parameter

PARAMETERS = (
    "in_proj_weight",
    "q_proj_weight",
    "k_proj_weight",
    "v_proj_weight",
    "in_proj_bias",
    "bias_k",
    "bias_v",
)


class MultiheadAttention(Module):
    """Attention from ``num_heads`` heads of size embed_dim / num_heads, then a Linear.

    Args:
        embed_dim: size of the queries and of the output (E).
        num_heads: heads; ``embed_dim`` must be a multiple of it.
        dropout: probability of dropping an attention weight in training.
        bias: biases in the input and output projections.
        add_bias_kv: learn one more key and value (``bias_k``, ``bias_v``) appended to each
            sequence.
        add_zero_attn: append a key and value of zeros to each sequence (after the projection).
        kdim, vdim: sizes of the keys and values, if not ``embed_dim`` (then the projections are
            ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` instead of ``in_proj_weight``).
        batch_first: inputs and output are (N, L, E) instead of (L, N, E).

    Call: ``attn(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns ``(attn_output, attn_weights)``:
    the output (L, N, E) ((N, L, E) with batch_first, (L, E) unbatched) and the weights
    (N, L, S), or (N, num_heads, L, S) with ``average_attn_weights=False``, or None with
    ``need_weights=False``. Boolean masks are True where attending is NOT allowed (the opposite
    of ``scaled_dot_product_attention``'s); float masks are added to the scores.
    ``key_padding_mask`` is (N, S); ``attn_mask`` (L, S) or (N * num_heads, L, S).
    ``is_causal`` is only PyTorch's hint that ``attn_mask`` is causal: the mask is still needed.

    Example:
        >>> attn = cr.nn.MultiheadAttention(16, 4, batch_first=True)
        >>> x = cr.randn(2, 5, 16)
        >>> out, weights = attn(x, x, x)
        >>> out.shape, weights.shape
        ((2, 5, 16), (2, 5, 5))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        check_device(device)
        dtype = as_dtype(dtype) or get_default_dtype()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive multiple of "
                f"num_heads ({num_heads})"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim, self.batch_first = embed_dim // num_heads, batch_first
        self.add_zero_attn, self._bias, self._add_bias_kv = add_zero_attn, bias, add_bias_kv
        for name in PARAMETERS:  # PyTorch's attributes, None where a setting leaves one out
            setattr(self, name, None)
        for name, shape in self.state_shapes(self.config()).items():
            if name in PARAMETERS:
                setattr(self, name, Parameter(xp.empty(shape, dtype=dtype)))
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's: Xavier-uniform projections, zero biases, Xavier-normal bias_k and bias_v."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for p in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(p)
        if self._bias:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self._add_bias_kv:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def config(self) -> dict:
        return {
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "bias": self._bias,
            "add_bias_kv": self._add_bias_kv,
            "add_zero_attn": self.add_zero_attn,
            "kdim": self.kdim,
            "vdim": self.vdim,
            "batch_first": self.batch_first,
        }

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        e = config["embed_dim"]
        kdim, vdim = config.get("kdim") or e, config.get("vdim") or e
        if kdim == e and vdim == e:
            shapes = {"in_proj_weight": (3 * e, e)}
        else:
            shapes = {
                "q_proj_weight": (e, e),
                "k_proj_weight": (e, kdim),
                "v_proj_weight": (e, vdim),
            }
        bias = config.get("bias", True)
        if bias:
            shapes["in_proj_bias"] = (3 * e,)
        if config.get("add_bias_kv", False):
            shapes |= {"bias_k": (1, 1, e), "bias_v": (1, 1, e)}
        return shapes | {"out_proj.weight": (e, e)} | ({"out_proj.bias": (e,)} if bias else {})

    def output_shape(self, query_shape: tuple, key_shape=None, value_shape=None) -> tuple:
        """The shape of ``attn_output`` (the first of the pair the call returns) for a query of
        ``query_shape``: the query's, with ``embed_dim`` last."""
        if len(query_shape) not in (2, 3) or query_shape[-1] != self.embed_dim:
            raise ValueError(f"the query must be (L, E) or 3-D with E = {self.embed_dim} last")
        return tuple(query_shape)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple:
        batched = self._check(query, key, value)
        if is_causal and attn_mask is None:
            raise ValueError(
                f"{self!r}: is_causal=True needs attn_mask (it only tells that attn_mask is causal)"
            )
        if not batched:  # one sequence: a batch of one
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = api.unsqueeze(key_padding_mask, 0)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        output, weights = self._attend(
            query, key, value, key_padding_mask, attn_mask, need_weights, average_attn_weights
        )
        if not batched:
            return output.squeeze(0), None if weights is None else weights.squeeze(0)
        return (output if self.batch_first else output.transpose(0, 1)), weights

    def _check(self, query, key, value) -> bool:
        """Whether the inputs are batched, after checking their shapes fit the layer."""
        dims = {query.ndim, key.ndim, value.ndim}
        sizes = (query.shape[-1], key.shape[-1], value.shape[-1])
        if len(dims) != 1 or dims - {2, 3} or sizes != (self.embed_dim, self.kdim, self.vdim):
            raise ValueError(
                f"{self!r} got query {tuple(query.shape)}, key {tuple(key.shape)}, value "
                f"{tuple(value.shape)}: they must all be 2-D (unbatched) or all 3-D, with last "
                f"dimensions {self.embed_dim}, {self.kdim}, {self.vdim}"
            )
        batch = 0 if self.batch_first or query.ndim == 2 else 1
        if query.ndim == 3 and not query.shape[batch] == key.shape[batch] == value.shape[batch]:
            raise ValueError(f"{self!r}: query, key and value have different batch sizes")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                f"{self!r}: key {tuple(key.shape)} and value {tuple(value.shape)} "
                "must have the same number of positions"
            )
        return query.ndim == 3

    def _attend(self, query, key, value, key_padding_mask, attn_mask, need_weights, average):
        """The heads' attention on (N, L, E) inputs: output (N, L, E) and the weights."""
        (n, length, e), h, d = query.shape, self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        mask = self._masks(attn_mask, key_padding_mask, n, length, k.shape[1], q.dtype)
        if self._add_bias_kv:
            k = api.cat([k, self.bias_k.expand(n, 1, e)], dim=1)
            v = api.cat([v, self.bias_v.expand(n, 1, e)], dim=1)
            mask = _attend_to_one_more(mask)
        q, k, v = (t.reshape(n, t.shape[1], h, d).transpose(1, 2) for t in (q, k, v))
        if self.add_zero_attn:
            zeros = Tensor._make(xp.zeros((n, h, 1, d), dtype=k.dtype), False)
            k, v = api.cat([k, zeros], dim=2), api.cat([v, zeros], dim=2)
            mask = _attend_to_one_more(mask)
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q * d**-0.5) @ k.transpose(-2, -1)
            weights = F.softmax(scores if mask is None else scores + mask, dim=-1)
            weights = F.dropout(weights, dropout_p)
            heads = weights @ v
            if average:
                weights = weights.mean(dim=1)
        else:
            heads = F.scaled_dot_product_attention(q, k, v, mask, dropout_p)
        output = self.out_proj(heads.transpose(1, 2).reshape(n, length, e))
        return output, weights

    def _project(self, query, key, value) -> tuple:
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            weights = (w[:e], w[e : 2 * e], w[2 * e :])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        biases = (None,) * 3 if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        return tuple(F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))

    def _masks(self, attn_mask, key_padding_mask, n, length, keys, dtype):
        """attn_mask and key_padding_mask as one additive mask that broadcasts to
        (N, heads, L, S), or None."""
        merged = None
        if attn_mask is not None:
            merged = _as_tensor(F.attention_mask(attn_mask, dtype, "attn_mask", False))
            allowed = {2: (length, keys), 3: (n * self.num_heads, length, keys)}
            if allowed.get(merged.ndim) != tuple(merged.shape):
                raise ValueError(
                    f"{self!r}: attn_mask of shape {tuple(merged.shape)} should be "
                    f"{(length, keys)} or {(n * self.num_heads, length, keys)}"
                )
            merged = merged.reshape(-1, self.num_heads if merged.ndim == 3 else 1, length, keys)
        if key_padding_mask is not None:
            padding = _as_tensor(
                F.attention_mask(key_padding_mask, dtype, "key_padding_mask", False)
            )
            if tuple(padding.shape) != (n, keys):
                raise ValueError(
                    f"{self!r}: key_padding_mask of shape {tuple(padding.shape)} should be "
                    f"(batch, keys) = {(n, keys)}"
                )
            padding = padding.reshape(n, 1, 1, keys)
            merged = padding if merged is None else merged + padding
        return merged

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"


def _as_tensor(mask) -> Tensor:
    return mask if isinstance(mask, Tensor) else Tensor._make(xp.asarray(mask), False)


def _attend_to_one_more(mask):
    """The mask with a column of zeros for an appended key (bias_k or the zero key)."""
    return None if mask is None else F.pad(mask, (0, 1))
