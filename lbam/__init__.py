"""lbam: object removal and hole filling with Edge-LBAM (edge-guided learnable bidirectional attention maps)."""
from .errors import InputError, LbamError, WeightsError

__version__ = "0.1.0"

__all__ = ["Inpainter", "inpaint", "InputError", "LbamError", "WeightsError", "__version__"]


def __getattr__(name):  # lazy: importing lbam stays cheap until the model is needed
    if name in ("Inpainter", "inpaint"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'lbam' has no attribute {name!r}")
