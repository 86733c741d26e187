"""The Transformer family, as PyTorch's ``nn.Transformer*`` (same arguments, parameter names and
numerics): encoder and decoder layers, their stacks, and the whole encoder-decoder.

An encoder layer is self-attention then a feed-forward network, each with a residual connection
and a LayerNorm: x = norm1(x + attn(x)); x = norm2(x + ff(x)) (post-norm, the default), or
x = x + attn(norm1(x)); x = x + ff(norm2(x)) with ``norm_first=True`` (pre-norm). A decoder layer
adds attention to the encoder's output (``memory``) between the two.
"""

from __future__ import annotations

import copy

from ..backend import xp
from ..devices import check_device
from ..dtypes import as_dtype
from ..tensor import Tensor
from . import describe, init
from . import functional as F
from .attention import MultiheadAttention
from .containers import ModuleList
from .layers import GELU, Dropout, LayerNorm, Linear, ReLU
from .module import Module

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation(activation):
    """A name ('relu', 'gelu') as its function; a function or module as it is."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation should be 'relu' or 'gelu', not {activation!r}")
        return ACTIVATIONS[activation]
    if not callable(activation):
        raise ValueError(f"activation should be 'relu', 'gelu' or a callable, not {activation!r}")
    return activation


def _activation_name(activation) -> str:
    """The name config() writes for an activation (only relu and gelu can be written)."""
    if activation is F.relu or type(activation) is ReLU:
        return "relu"
    if activation is F.gelu or (type(activation) is GELU and activation.approximate == "none"):
        return "gelu"
    raise NotImplementedError(
        f"cannot describe the activation {activation!r} in a model file: only 'relu' and "
        "'gelu' can be saved with cr.save (save the weights alone with model.state_dict())"
    )


def _check_last(layer: Module, name: str, shape: tuple, d_model: int) -> None:
    if len(shape) not in (2, 3) or shape[-1] != d_model:
        raise ValueError(
            f"{type(layer).__name__}: {name} of shape {tuple(shape)} should be 2-D (unbatched) "
            f"or 3-D with d_model = {d_model} last"
        )


class _Layer(Module):
    """What the encoder and decoder layers share: the feed-forward block, the norms, config."""

    def _build(self, d_model, dim_feedforward, dropout, activation, eps, norm_first, bias, norms):
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        for i in range(1, norms + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=eps, bias=bias))
        for i in range(1, norms + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _activation(activation)

    def _ff_block(self, x, dropout):
        return dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def config(self) -> dict:
        attn = self.self_attn
        return {
            "d_model": attn.embed_dim,
            "nhead": attn.num_heads,
            "dim_feedforward": self.linear1.out_features,
            "dropout": self.dropout.p,
            "activation": _activation_name(self.activation),
            "layer_norm_eps": self.norm1.eps,
            "batch_first": attn.batch_first,
            "norm_first": self.norm_first,
            "bias": self.linear1.bias is not None,
        }

    @classmethod
    def _shapes(cls, config: dict, attentions: tuple, norms: int) -> dict:
        d, ff, bias = (
            config["d_model"],
            config.get("dim_feedforward", 2048),
            config.get("bias", True),
        )
        attn = {"embed_dim": d, "num_heads": config["nhead"], "bias": bias}
        shapes = {}
        for name in attentions:
            attn_shapes = MultiheadAttention.state_shapes(attn)
            shapes |= {f"{name}.{k}": v for k, v in attn_shapes.items()}
        for name, (n_in, n_out) in (("linear1", (d, ff)), ("linear2", (ff, d))):
            linear = {"in_features": n_in, "out_features": n_out, "bias": bias}
            shapes |= {f"{name}.{k}": v for k, v in Linear.state_shapes(linear).items()}
        norm = LayerNorm.state_shapes({"normalized_shape": [d], "bias": bias})
        for i in range(1, norms + 1):
            shapes |= {f"norm{i}.{k}": v for k, v in norm.items()}
        return shapes

    def _finish(self, device, dtype) -> None:
        check_device(device)
        if dtype is not None:
            self.to(as_dtype(dtype))


class TransformerEncoderLayer(_Layer):
    """Self-attention and a feed-forward network (d_model -> dim_feedforward -> d_model), each
    with a residual connection, dropout and a LayerNorm (after it, or before with norm_first).

    Call: ``layer(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``; shapes and
    masks as :class:`~chainrule.nn.MultiheadAttention`'s. Shape: src -> the same shape.

    Example:
        >>> layer = cr.nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32)
        >>> layer(cr.randn(5, 2, 16)).shape
        (5, 2, 16)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation=F.relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first
        )
        self._build(
            d_model, dim_feedforward, dropout, activation, layer_norm_eps, norm_first, bias, 2
        )
        self._finish(device, dtype)

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        return cls._shapes(config, ("self_attn",), 2)

    def output_shape(self, input_shape: tuple) -> tuple:
        _check_last(self, "src", input_shape, self.self_attn.embed_dim)
        return tuple(input_shape)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        _check_last(self, "src", tuple(src.shape), self.self_attn.embed_dim)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x, self.dropout2))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)


class TransformerDecoderLayer(_Layer):
    """Self-attention, attention to the encoder's output (``memory``) and a feed-forward network,
    each with a residual connection, dropout and a LayerNorm (after it, or before with
    norm_first).

    Call: ``layer(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)``.
    Shape: (tgt, memory) -> tgt's shape.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation=F.relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias
        )
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias
        )
        self._build(
            d_model, dim_feedforward, dropout, activation, layer_norm_eps, norm_first, bias, 3
        )
        self._finish(device, dtype)

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        return cls._shapes(config, ("self_attn", "multihead_attn"), 3)

    def output_shape(self, tgt_shape: tuple, memory_shape: tuple | None = None) -> tuple:
        """The output's shape (tgt's) for a target of ``tgt_shape``."""
        _check_last(self, "tgt", tgt_shape, self.self_attn.embed_dim)
        return tuple(tgt_shape)

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ):
        for name, t in (("tgt", tgt), ("memory", memory)):
            _check_last(self, name, tuple(t.shape), self.self_attn.embed_dim)
        x = tgt
        memory_args = (memory, memory_mask, memory_key_padding_mask, memory_is_causal)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), *memory_args)
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, *memory_args))
        return self.norm3(x + self._ff_block(x, self.dropout3))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout1(x)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(
            x,
            memory,
            memory,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout2(x)


class _Stack(Module):
    """What the encoder and decoder share: ``num_layers`` copies of a layer, then a norm."""

    def _stack(self, layer: Module, num_layers: int, norm: Module | None) -> None:
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"{type(self).__name__}: num_layers must be an int >= 0")
        self.layers = ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    @classmethod
    def from_config(cls, config: dict) -> Module:
        config = dict(config)
        for key in (cls.LAYER, "norm"):
            if config.get(key) is not None:
                config[key] = describe.built(config[key])
        return cls(**config)

    def config(self) -> dict:
        if not self.num_layers:
            raise NotImplementedError(f"{type(self).__name__} of 0 layers cannot be described")
        norm = self.norm
        return {
            self.LAYER: describe.layer_entry(self.layers[0], self.LAYER),
            "num_layers": self.num_layers,
            "norm": None if norm is None else describe.layer_entry(norm, "norm"),
        }

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        shapes = describe.entry_shapes(config[cls.LAYER], "layers", config["num_layers"])
        norm = config.get("norm")
        return shapes | ({} if norm is None else describe.entry_shapes(norm, "norm"))

    def _normed(self, output):
        return output if self.norm is None else self.norm(output)


class TransformerEncoder(_Stack):
    """``num_layers`` copies of ``encoder_layer`` (each copy with its own weights, all starting
    from the given layer's), then ``norm`` if given.

    Call: ``encoder(src, mask=None, src_key_padding_mask=None, is_causal=None)``.
    Shape: src -> the same shape. ``enable_nested_tensor`` and ``mask_check`` are accepted for
    PyTorch's signature; there is no nested-tensor fast path (so padded positions are computed,
    where PyTorch's fast path would return 0 for them).
    """

    LAYER = "encoder_layer"

    def __init__(
        self,
        encoder_layer: Module,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ):
        super().__init__()
        self._stack(encoder_layer, num_layers, norm)
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check

    def config(self) -> dict:
        flags = {"enable_nested_tensor": self.enable_nested_tensor, "mask_check": self.mask_check}
        return super().config() | flags

    def output_shape(self, input_shape: tuple) -> tuple:
        return self.layers[0].output_shape(input_shape) if self.num_layers else tuple(input_shape)

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        output = src
        for layer in self.layers:
            output = layer(
                output,
                src_mask=mask,
                is_causal=bool(is_causal),
                src_key_padding_mask=src_key_padding_mask,
            )
        return self._normed(output)


class TransformerDecoder(_Stack):
    """``num_layers`` copies of ``decoder_layer``, then ``norm`` if given.

    Call: ``decoder(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False)``.
    Shape: (tgt, memory) -> tgt's shape.
    """

    LAYER = "decoder_layer"

    def __init__(self, decoder_layer: Module, num_layers: int, norm: Module | None = None):
        super().__init__()
        self._stack(decoder_layer, num_layers, norm)

    def output_shape(self, tgt_shape: tuple, memory_shape: tuple | None = None) -> tuple:
        """The output's shape (tgt's) for a target of ``tgt_shape``."""
        return self.layers[0].output_shape(tgt_shape) if self.num_layers else tuple(tgt_shape)

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal=None,
        memory_is_causal: bool = False,
    ):
        output = tgt
        for layer in self.layers:
            output = layer(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal),
                memory_is_causal=memory_is_causal,
            )
        return self._normed(output)


class Transformer(Module):
    """The encoder-decoder of "Attention Is All You Need": ``num_encoder_layers`` encoder layers
    and a LayerNorm, ``num_decoder_layers`` decoder layers and a LayerNorm (or the
    ``custom_encoder`` / ``custom_decoder`` given). Weights with more than one axis start
    Xavier-uniform, as PyTorch's.

    Call: ``model(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
    src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
    src_is_causal=None, tgt_is_causal=None, memory_is_causal=False)``.
    Shape: (src, tgt) -> tgt's shape: (T, N, E), (N, T, E) with batch_first, (T, E) unbatched.

    Example:
        >>> model = cr.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=2,
        ...                           num_decoder_layers=2, dim_feedforward=32)
        >>> mask = cr.nn.Transformer.generate_square_subsequent_mask(7)
        >>> model(cr.randn(10, 2, 16), cr.randn(7, 2, 16), tgt_mask=mask).shape
        (7, 2, 16)
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation=F.relu,
        custom_encoder: Module | None = None,
        custom_decoder: Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps)
        layer_args += (batch_first, norm_first, bias)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(*layer_args)
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
            self.encoder = TransformerEncoder(layer, num_encoder_layers, norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(*layer_args)
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
            self.decoder = TransformerDecoder(layer, num_decoder_layers, norm)
        self._reset_parameters()
        custom = {"custom_encoder": custom_encoder, "custom_decoder": custom_decoder}
        self._custom = [key for key, part in custom.items() if part is not None]
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        self._config = {
            "d_model": d_model,
            "nhead": nhead,
            "num_encoder_layers": num_encoder_layers,
            "num_decoder_layers": num_decoder_layers,
            "dim_feedforward": dim_feedforward,
            "dropout": dropout,
            "activation": activation,
            "layer_norm_eps": layer_norm_eps,
            "batch_first": batch_first,
            "norm_first": norm_first,
            "bias": bias,
        }
        check_device(device)
        if dtype is not None:
            self.to(as_dtype(dtype))

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    @classmethod
    def from_config(cls, config: dict) -> Module:
        config = dict(config)
        for key in ("custom_encoder", "custom_decoder"):
            if config.get(key) is not None:
                config[key] = describe.built(config[key])
        return cls(**config)

    def config(self) -> dict:
        config = self._config | {
            "activation": _activation_name(_activation(self._config["activation"]))
        }
        for key, part in (("custom_encoder", self.encoder), ("custom_decoder", self.decoder)):
            config[key] = describe.layer_entry(part, key) if key in self._custom else None
        return config

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        layer = {k: config[k] for k in _LAYER_ARGUMENTS if k in config}
        d_model, bias = config.get("d_model", 512), config.get("bias", True)
        layer |= {"d_model": d_model, "nhead": config.get("nhead", 8)}
        norm = {"type": "LayerNorm", "args": {"normalized_shape": [d_model], "bias": bias}}
        shapes = {}
        for part, kind, count in (
            ("encoder", TransformerEncoderLayer, config.get("num_encoder_layers", 6)),
            ("decoder", TransformerDecoderLayer, config.get("num_decoder_layers", 6)),
        ):
            custom = config.get(f"custom_{part}")
            if custom is not None:
                shapes |= describe.entry_shapes(custom, part)
            else:
                entry = {"type": kind.__name__, "args": layer}
                shapes |= describe.entry_shapes(entry, f"{part}.layers", count)
                shapes |= describe.entry_shapes(norm, f"{part}.norm")
        return shapes

    def output_shape(self, src_shape: tuple, tgt_shape: tuple | None = None) -> tuple:
        """The output's shape (tgt's) for a source of ``src_shape`` and a target of
        ``tgt_shape``."""
        _check_last(self, "src", src_shape, self.d_model)
        _check_last(self, "tgt", tgt_shape, self.d_model)
        return tuple(tgt_shape)

    def forward(
        self,
        src,
        tgt,
        src_mask=None,
        tgt_mask=None,
        memory_mask=None,
        src_key_padding_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        src_is_causal=None,
        tgt_is_causal=None,
        memory_is_causal: bool = False,
    ):
        batch = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch] != tgt.shape[batch]:
            raise ValueError(
                f"Transformer: src {tuple(src.shape)} and tgt {tuple(tgt.shape)} have different "
                f"batch sizes (axis {batch})"
            )
        for name, t in (("src", src), ("tgt", tgt)):
            _check_last(self, name, tuple(t.shape), self.d_model)
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """The causal mask for ``sz`` positions: 0 on and below the diagonal, -inf above
        (position i may attend to 0..i), float32 unless ``dtype`` is given."""
        check_device(device)
        dtype = as_dtype(dtype) or xp.dtype(xp.float32)
        mask = xp.triu(xp.full((sz, sz), -xp.inf, dtype=dtype), k=1)
        return Tensor._make(mask, False)


_LAYER_ARGUMENTS = (
    "dim_feedforward",
    "dropout",
    "activation",
    "layer_norm_eps",
    "batch_first",
    "norm_first",
    "bias",
)
