"""Width configurations of MECNet and the Edge-LBAM generator.

A configuration is plain data (dataclasses) so that it round-trips through a weights folder's
``config.json``. ``paper`` is the exact architecture of the paper (16.53 M + 109.94 M parameters);
``compact`` is the small configuration the bundled default weights are trained in.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Dict, Tuple

from ..edges import CANNY_HIGH, CANNY_LOW, CANNY_SIGMA


EDGE_DECODES = ("none", "nms")
#: number of forward-attention layers of the Edge-LBAM generator, i.e. of ``EdgeLBAMConfig.widths``
N_GENERATOR_WIDTHS = 7


@dataclass(frozen=True)
class MECNetConfig:
    """MECNet widths: encoder ``base, 2*base, 4*base``; trunk of ``n_blocks`` residual blocks at ``4*base``.

    smooth_upsampling: blur the output of each of the five upsampling stages with the fixed [1, 2, 1] binomial
        (``lbam.models.smoothing``): no period-2 lattice in the edge map. No parameters; False is the paper.
    """

    base: int = 64
    n_blocks: int = 8
    smooth_upsampling: bool = False


@dataclass(frozen=True)
class EdgeLBAMConfig:
    """Edge-LBAM generator widths.

    widths: output channels C_1..C_7 of the seven forward-attention layers; the reverse path uses C_1..C_6.
    prefill: what the hole holds in the network input X. ``"zero"`` is the paper (X = image * known);
        ``"pyramid"`` fills the hole with a push-pull interpolation of the known pixels first.
    residual: when True the output is ``clamp(prefilled image + tanh(z), 0, 1)`` instead of the
        paper's ``|tanh(z)|``. Only meaningful together with a prefill.
    smooth_upsampling: blur the output of every transposed convolution (the six decoder layers and the output
        layer) with the fixed [1, 2, 1] binomial (``lbam.models.smoothing``): no checkerboard or blocks from the
        upsampling lattice. No parameters; False is the paper.
    """

    widths: Tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512)
    prefill: str = "zero"
    residual: bool = False
    smooth_upsampling: bool = False

    def __post_init__(self) -> None:
        if len(self.widths) != N_GENERATOR_WIDTHS:
            raise ValueError(f"Edge-LBAM needs {N_GENERATOR_WIDTHS} encoder widths, got {len(self.widths)}")
        if self.prefill not in ("zero", "pyramid"):
            raise ValueError(f"prefill must be 'zero' or 'pyramid', got {self.prefill!r}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild both networks and their preprocessing.

    canny_sigma / canny_low / canny_high: Canny settings of docs/ARCHITECTURE.md section 1 (thresholds on the
    gradient magnitude of the smoothed float gray image in [0, 1]).
    train_size: side of the square crops the networks were trained on (inference scales crops to it).
    edge_decode: how MECNet's probabilities become the edge map inside the hole. ``"none"`` (the paper) passes
        them on as they are; ``"nms"`` keeps only ridge pixels (local maxima across the line, as Canny's
        non-maximum suppression) whose probability is at least ``edge_threshold``: thin lines instead of a
        soft haze (``lbam.compose.decode_edges``).
    edge_threshold: probability a ridge pixel needs to survive ``"nms"`` decoding, in (0, 1).
    """

    name: str = "paper"
    mecnet: MECNetConfig = field(default_factory=MECNetConfig)
    generator: EdgeLBAMConfig = field(default_factory=EdgeLBAMConfig)
    canny_sigma: float = CANNY_SIGMA
    canny_low: float = CANNY_LOW
    canny_high: float = CANNY_HIGH
    train_size: int = 256
    edge_decode: str = "none"
    edge_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.edge_decode not in EDGE_DECODES:
            raise ValueError(f"edge_decode must be one of {EDGE_DECODES}, got {self.edge_decode!r}")
        if not 0.0 < self.edge_threshold < 1.0:
            raise ValueError(f"edge_threshold must be in (0, 1), got {self.edge_threshold!r}")

    def with_smooth_upsampling(self, on: bool) -> "ModelConfig":
        """This configuration with ``smooth_upsampling`` set to ``on`` in both networks."""
        return replace(self, mecnet=replace(self.mecnet, smooth_upsampling=on),
                       generator=replace(self.generator, smooth_upsampling=on))

    def parameter_layout(self) -> Tuple[MECNetConfig, EdgeLBAMConfig]:
        """What decides the two networks' parameter names and shapes: their configurations with the
        parameter-free switches (``smooth_upsampling``) reset. Weights load into any configuration whose layout
        equals theirs."""
        plain = self.with_smooth_upsampling(False)
        return plain.mecnet, plain.generator

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["generator"]["widths"] = list(self.generator.widths)
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown keys in model config: {sorted(unknown)}")
        d = dict(d)
        d["mecnet"] = MECNetConfig(**d.get("mecnet", {}))
        g = dict(d.get("generator", {}))
        if "widths" in g:
            g["widths"] = tuple(g["widths"])
        d["generator"] = EdgeLBAMConfig(**g)
        return cls(**d)


CONFIGS: Dict[str, ModelConfig] = {
    "paper": ModelConfig(),
    "compact": ModelConfig(
        name="compact",
        mecnet=MECNetConfig(base=12, n_blocks=4, smooth_upsampling=True),
        generator=EdgeLBAMConfig(widths=(16, 32, 64, 96, 128, 128, 128), prefill="pyramid", residual=True,
                                 smooth_upsampling=True),
        edge_decode="nms",
    ),
    # Smallest widths that still exercise every code path: for tests only.
    "tiny": ModelConfig(
        name="tiny",
        mecnet=MECNetConfig(base=4, n_blocks=1),
        generator=EdgeLBAMConfig(widths=(4, 8, 8, 8, 8, 8, 8), prefill="pyramid", residual=True),
    ),
    "tiny-paper": ModelConfig(
        name="tiny-paper",
        mecnet=MECNetConfig(base=4, n_blocks=2),
        generator=EdgeLBAMConfig(widths=(4, 8, 8, 16, 16, 16, 16)),
    ),
}


def get_config(name: str) -> ModelConfig:
    """Return the named configuration; the error lists the known names."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model configuration {name!r}; known: {sorted(CONFIGS)}") from None
