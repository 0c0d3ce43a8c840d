"""Training configuration: one dataclass, and the named recipes that fill it.

``paper``: docs/ARCHITECTURE.md section 5 (Adam 2.5e-5 betas (0.5, 0.9) for Edge-LBAM, 1e-4 betas (0, 0.9) for
MECNet with a 10x slower discriminator, 1 L1 + 0.1 WGAN-GP + 0.05 perceptual + 120 style, MECNet trained
adversarially with feature matching).
``fast``: the recipe of the bundled compact weights, made for a 2-core CPU: hole-weighted squared error only for
the generator (no critic, no VGG), class-balanced BCE for MECNet, Adam 5e-4 for both, crops zoomed 1-1.5x, EMA
weights.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Optional, Sequence, Tuple, Union

STAGES = ("edge", "inpaint", "joint")
CRITICS = ("two_column", "patch")
EDGE_LOSSES = ("bce", "gan")


@dataclass
class TrainConfig:
    stage: str = "joint"
    model: str = "compact"
    recipe: str = "fast"
    data: Union[str, Sequence[str]] = ""  # one folder, or several sampled with equal probability
    val: Optional[str] = None
    out: str = "runs/default"
    mask_dir: Optional[str] = None
    seed: int = 0
    size: int = 256
    short_side: int = 350
    scale: Tuple[float, float] = (1.0, 2.0)
    hole_range: Tuple[float, float] = (0.05, 0.6)
    # coarse-to-fine refinement training: the hole's prefill is the truth downscaled by one of these factors and
    # upscaled back, and the losses see what a refinement pass keeps (lbam.tiling.add_detail). () = off
    refine_factors: Tuple[int, ...] = ()
    refine_share: float = 1.0  # the share of samples that refine (the rest are plain samples of the coarse pass)
    refine_short_side: Optional[int] = None  # refinement samples at min(own, this) short side, never enlarged
    batch_size: int = 8
    workers: int = 0
    # optimisation
    lr: float = 2e-4
    betas: Tuple[float, float] = (0.9, 0.99)
    edge_lr: float = 2e-4
    edge_betas: Tuple[float, float] = (0.9, 0.99)
    disc_lr_ratio: float = 0.1
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    # generator loss weights (docs/ARCHITECTURE.md section 5)
    l1_hole: float = 6.0
    l1_valid: float = 1.0
    pixel_loss: str = "l1"  # "l1" (the paper) or "l2" (hole-weighted squared error, what PSNR measures)
    w_adv: float = 0.0
    # the adversary of w_adv / w_fm: "two_column" (the paper's WGAN-GP critic) or "patch" (a spectral-norm PatchGAN
    # on (image, hole) with a non-saturating loss on the patches that see the hole: about 4x cheaper on a CPU)
    critic: str = "two_column"
    critic_width: int = 64  # base width of the critic (64: the paper's)
    w_fm: float = 0.0  # feature matching against the patch critic's layers (a learned perceptual loss)
    w_perc: float = 0.0
    w_style: float = 0.0
    w_grad: float = 0.0  # gradient_statistics_loss: local texture energy of the fill against the truth
    w_grad_on: str = "all"  # where w_grad applies: "all" samples, or only "refine" (refinement) samples
    w_grid: float = 0.0  # grid_loss: checkerboard energy of the fill beyond the truth's
    gp_weight: float = 10.0
    vgg_weights: Optional[str] = None
    # MECNet loss: "bce" (edge pixels weighted by edge_pos_weight) or "gan" (non-saturating + feature matching)
    edge_loss: str = "bce"
    edge_pos_weight: float = 1.0  # weight of edge pixels in the BCE (1: plain; higher: more recall, for NMS)
    edge_disc_width: int = 64  # base width of MECNet's PatchGAN discriminator with edge_loss="gan" (64: EdgeConnect's)
    # with edge_loss="gan": weight of a BCE against the Canny edges of the hole added to MECNet's adversarial loss
    # (0: the paper's loss alone; an anchor against lines drawn where the photo has none, e.g. parallel hatching)
    edge_bce_weight: float = 0.0
    # decoding of MECNet's map (ModelConfig.edge_decode / edge_threshold); None: the model configuration's.
    # `lbam finetune` sets them from the weights it starts from, so fine-tuning keeps their decoding.
    edge_decode: Optional[str] = None
    edge_threshold: Optional[float] = None
    # smooth_upsampling of both networks (ModelConfig.mecnet / .generator); None: the model configuration's.
    # `lbam finetune` sets it from the weights it starts from.
    smooth_upsampling: Optional[bool] = None
    edge_fm_weight: float = 10.0
    detach_edges: bool = True
    # joint stage only: MECNet is not trained (eval mode, no gradient, no discriminator update) and the generator
    # learns from its completed edges, as at inference: on a 2-core CPU a step costs about 0.6x (README)
    freeze_edges: bool = False
    # joint stage only: the share of samples whose generator reads the Canny edges of the truth (the ``inpaint``
    # stage's input) instead of MECNet's completion, so that it learns to follow the lines in a hole (MECNet's
    # where it draws them, a user's sketch); 0: all samples read MECNet's, as at inference
    true_edge_share: float = 0.0
    # schedule and bookkeeping
    max_steps: int = 10**9
    # learning-rate schedule: constant, or cosine from decay_from to max_steps down to min_lr_ratio * lr
    decay_from: Optional[int] = None
    min_lr_ratio: float = 0.1
    max_minutes: float = float("inf")
    checkpoint_minutes: float = 5.0
    log_every: int = 20
    val_every: int = 500
    val_per_image: int = 2
    sample_every: int = 500
    amp: bool = True  # bfloat16 autocast on a GPU
    # bfloat16 autocast on the CPU too (weights and losses stay float32): 1.35x per step on a CPU with AVX512-BF16
    # (measured, README); slower where the CPU has no native bfloat16, hence not the default
    cpu_bf16: bool = False
    init: Optional[str] = None
    tensorboard: bool = False

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.pixel_loss not in ("l1", "l2"):
            raise ValueError(f"pixel_loss must be 'l1' or 'l2', got {self.pixel_loss!r}")
        if self.decay_from is not None and not 0 <= self.decay_from < self.max_steps:
            raise ValueError(f"decay_from must lie in [0, max_steps={self.max_steps}), got {self.decay_from}")
        if self.w_grad_on not in ("all", "refine"):
            raise ValueError(f"w_grad_on must be 'all' or 'refine', got {self.w_grad_on!r}")
        if self.critic not in CRITICS:
            raise ValueError(f"critic must be one of {CRITICS}, got {self.critic!r}")
        if self.w_fm > 0 and self.critic != "patch":
            raise ValueError("w_fm (feature matching) needs critic='patch'")
        if self.critic_width < 1:
            raise ValueError(f"critic_width must be >= 1, got {self.critic_width}")
        if self.edge_disc_width < 1:
            raise ValueError(f"edge_disc_width must be >= 1, got {self.edge_disc_width}")
        if self.edge_loss not in EDGE_LOSSES:
            raise ValueError(f"edge_loss must be one of {EDGE_LOSSES}, got {self.edge_loss!r}")
        if self.edge_bce_weight < 0:
            raise ValueError(f"edge_bce_weight must be >= 0, got {self.edge_bce_weight}")
        if self.edge_bce_weight > 0 and self.edge_loss != "gan":
            raise ValueError("edge_bce_weight adds a BCE anchor to edge_loss='gan'; edge_loss='bce' is BCE already")
        if self.freeze_edges and self.stage != "joint":
            raise ValueError(f"freeze_edges keeps MECNet fixed in the joint stage; stage is {self.stage!r}")
        if not 0 <= self.true_edge_share <= 1:
            raise ValueError(f"true_edge_share must lie in [0, 1], got {self.true_edge_share}")
        if self.true_edge_share > 0 and self.stage != "joint":
            raise ValueError(f"true_edge_share mixes truth edges into the joint stage; stage is {self.stage!r}")
        if not isinstance(self.data, str):
            self.data = list(self.data)
        self.scale, self.betas = tuple(self.scale), tuple(self.betas)
        self.edge_betas, self.hole_range = tuple(self.edge_betas), tuple(self.hole_range)
        self.refine_factors = tuple(int(f) for f in self.refine_factors)
        if self.w_grad_on == "refine" and not self.refine_factors:
            raise ValueError("w_grad_on='refine' needs refinement samples (refine_factors)")
        if len(self.hole_range) != 2 or not 0 <= self.hole_range[0] < self.hole_range[1] <= 1:
            raise ValueError(f"hole_range must be (min, max) with 0 <= min < max <= 1, got {self.hole_range}")

    @property
    def trains_edges(self) -> bool:
        """Whether MECNet is optimised: the edge stage, and the joint stage unless ``freeze_edges``."""
        return self.stage == "edge" or (self.stage == "joint" and not self.freeze_edges)

    @property
    def uses_critic(self) -> bool:
        """Whether the generator trains against a critic (adversarial term or feature matching)."""
        return self.w_adv > 0 or self.w_fm > 0

    def lr_factor(self, step: int) -> float:
        """Multiplier of every learning rate for optimisation step ``step`` (0-based): 1 without a schedule."""
        if self.decay_from is None or step <= self.decay_from:
            return 1.0
        t = min(1.0, (step - self.decay_from) / (self.max_steps - self.decay_from))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


RECIPES: Dict[str, Dict[str, Any]] = {
    "paper": dict(
        lr=2.5e-5, betas=(0.5, 0.9), edge_lr=1e-4, edge_betas=(0.0, 0.9), disc_lr_ratio=0.1,
        w_adv=0.1, w_perc=0.05, w_style=120.0, edge_loss="gan", edge_fm_weight=10.0,
        scale=(1.0, 1.0), hole_range=(0.0, 0.6), ema_decay=0.0, grad_clip=0.0, detach_edges=False,
    ),
    # what lbam-compact was trained with: squared hole error (PSNR's loss), higher rates, mild zoom
    "fast": dict(pixel_loss="l2", lr=5e-4, edge_lr=5e-4, scale=(1.0, 1.5)),
}


def make_config(recipe: str = "fast", **overrides: Any) -> TrainConfig:
    """A TrainConfig from a named recipe, with explicit overrides (None values are ignored)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known: {sorted(RECIPES)}")
    cfg = replace(TrainConfig(recipe=recipe), **RECIPES[recipe])
    if recipe == "paper" and overrides.get("stage") == "joint":
        cfg = replace(cfg, lr=1e-5)  # the paper's joint fine-tuning rate
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
