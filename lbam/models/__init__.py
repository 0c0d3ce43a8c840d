"""The two networks of Edge-LBAM and their width configurations."""
from .configs import CONFIGS, EdgeLBAMConfig, MECNetConfig, ModelConfig, get_config
from .edge_lbam import EdgeLBAM, pyramid_fill
from .mecnet import MECNet

__all__ = ["CONFIGS", "EdgeLBAM", "EdgeLBAMConfig", "MECNet", "MECNetConfig", "ModelConfig", "get_config", "pyramid_fill"]
