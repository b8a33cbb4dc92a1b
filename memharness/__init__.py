"""memharness: executable checks of the claims of "How Diffusion Models Memorize"."""

from memharness.errors import MemharnessError

__version__ = "0.1.0"

__all__ = ["MemharnessError", "__version__"]
