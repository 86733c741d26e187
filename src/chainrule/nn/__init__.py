"""Neural-network building blocks: modules, layers, losses, initialisation."""

from . import describe, functional, init, modules, parallel, utils
from .attention import MultiheadAttention
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList
from .conv import AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout2d, MaxPool2d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d
from .describe import saveable
from .embedding import Embedding
from .features import PlaneFeatures
from .layers import (
    GELU,
    BatchNorm1d,
    Dropout,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    Unflatten,
)
from .losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import Module, Parameter, Sequential, summary
from .parallel import DataParallel
from .pixel_shuffle import PixelShuffle, PixelUnshuffle
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from .transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
