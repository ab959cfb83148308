"""notesqa's embedder: normalised sentence vectors from the project's own bi-encoder.

Example:
    >>> from embedder import Embedder
    >>> Embedder.load().encode(["a sentence"]).shape      # (n, d) float32, unit norm
    (1, 256)
"""

from embedder.model import Embedder
from embedder.windows import WindowConfig, trained_windows

__all__ = ["Embedder", "WindowConfig", "trained_windows"]
