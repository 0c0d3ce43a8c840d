"""Exceptions raised at the public boundary of lbam."""


class LbamError(Exception):
    """Base class of every error lbam raises on purpose."""


class InputError(LbamError, ValueError):
    """An image or mask given to lbam is unusable; the message names the problem."""


class WeightsError(LbamError):
    """Weights cannot be found, downloaded, verified or loaded."""
