"""Record a training run while it runs, as a ``.trajectory`` file for ``nagref audit``.

``with nagref.record.torch(optimizer, "run.trajectory"): ...`` around the
user's own loop; :class:`TrajectoryWriter` for any other.
"""

from __future__ import annotations

from .torch_hooks import torch
from .writer import TrajectoryWriter

__all__ = ["TrajectoryWriter", "torch"]
