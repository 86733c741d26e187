"""``torch.nn.modules``: where programs find the layer classes by their PyTorch module path
(``nn.modules.rnn.LSTM``, ``nn.modules.batchnorm.BatchNorm2d``, ``nn.modules.loss._Loss``).

Each submodule re-exports the classes of :mod:`chainrule.nn` that PyTorch keeps there.
"""

from . import (
    activation,
    batchnorm,
    container,
    conv,
    dropout,
    flatten,
    linear,
    loss,
    module,
    normalization,
    pooling,
    rnn,
    sparse,
    transformer,
)
