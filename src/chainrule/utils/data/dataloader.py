"""``torch.utils.data.dataloader``: the DataLoader and what it calls (see :mod:`chainrule.data`)."""

from ...data.collate import default_collate, default_convert
from ...data.loader import DataLoader, WorkerInfo, get_worker_info

__all__ = ["DataLoader", "WorkerInfo", "default_collate", "default_convert", "get_worker_info"]
