"""What ``torch.utils`` users import: ``from chainrule.utils.data import DataLoader``."""

from . import data
