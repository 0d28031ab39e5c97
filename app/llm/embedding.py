"""What an embedding is throughout the server: one float32 vector, as pgvector stores it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Embedding = npt.NDArray[np.float32]
