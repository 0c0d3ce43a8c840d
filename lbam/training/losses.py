"""Training losses of Edge-LBAM and MECNet (docs/ARCHITECTURE.md section 5).

Conventions used throughout this module:

* images are float tensors ``(B, 3, H, W)`` with values in ``[0, 1]``;
* hole masks are float tensors ``(B, 1, H, W)`` with ``1 = hole`` (missing) and ``0 = known``;
* every function returns an unweighted scalar tensor; the loss weights of the paper
  (``1*L1 + 0.1*L_adv + 0.05*L_perc + 120*L_style`` for Edge-LBAM, ``L_adv + 10*L_fm`` for MECNet)
  are applied by the trainer.

Perceptual and style terms need an ImageNet VGG-16 from a local file (:mod:`lbam.training.vgg`, re-exported
here). Without one :func:`build_vgg` returns ``None`` and :func:`perceptual_and_style` returns zeros, i.e. the
two terms are switched off.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ..edges import rgb_to_gray
from .metrics import grid_energy, sobel_magnitude, window_fraction
from .vgg import IMAGENET_MEAN, IMAGENET_STD, VGG16Features, build_vgg

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG16Features",
    "build_vgg",
    "edge_bce",
    "feature_matching_loss",
    "gradient_penalty",
    "gradient_statistics_loss",
    "gram",
    "grid_loss",
    "hole_l1",
    "hole_mse",
    "masked_ns_d_loss",
    "masked_ns_g_loss",
    "patch_hole_weights",
    "ns_d_loss",
    "ns_g_loss",
    "perceptual_and_style",
    "perceptual_loss",
    "style_loss",
    "wgan_critic_loss",
    "wgan_generator_loss",
]


# --------------------------------------------------------------------------------------------------
# Reconstruction
# --------------------------------------------------------------------------------------------------
def hole_l1(
    out: torch.Tensor,
    target: torch.Tensor,
    hole: torch.Tensor,
    hole_weight: float = 6.0,
    valid_weight: float = 1.0,
) -> torch.Tensor:
    """Hole-weighted L1 of the LBAM reference.

    ``hole_weight * mean(|out - target| * hole) + valid_weight * mean(|out - target| * (1 - hole))``.
    Both means run over *all* ``B*C*H*W`` elements (as ``nn.L1Loss`` on masked tensors does in the
    reference), so the terms scale with the hole ratio rather than being normalised per region.

    Args:
        out: generator output ``(B, C, H, W)`` in [0, 1].
        target: ground truth ``(B, C, H, W)`` in [0, 1].
        hole: mask ``(B, 1, H, W)`` (or ``(B, C, H, W)``), 1 = hole.
    Returns:
        scalar tensor.
    """
    return _hole_weighted((out - target).abs(), hole, hole_weight, valid_weight)


def hole_mse(
    out: torch.Tensor,
    target: torch.Tensor,
    hole: torch.Tensor,
    hole_weight: float = 6.0,
    valid_weight: float = 1.0,
) -> torch.Tensor:
    """``hole_l1`` with squared errors: the loss PSNR rewards (the mean, not the median, of what the hole may
    hold). Not in the paper; an option of the ``fast`` recipe (``TrainConfig.pixel_loss = "l2"``).
    Shapes and weights as ``hole_l1``; returns a scalar tensor."""
    return _hole_weighted((out - target).square(), hole, hole_weight, valid_weight)


def _hole_weighted(err: torch.Tensor, hole: torch.Tensor, hole_weight: float, valid_weight: float) -> torch.Tensor:
    hole = hole.to(err.dtype).expand_as(err)
    return hole_weight * (err * hole).mean() + valid_weight * (err * (1.0 - hole)).mean()



# --------------------------------------------------------------------------------------------------
# Perceptual and style
# --------------------------------------------------------------------------------------------------
def perceptual_loss(feats_a: Sequence[torch.Tensor], feats_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the mean L1 distance between feature maps (pool1..pool3).

    ``feats_a`` / ``feats_b``: equal-length lists of ``(B, C_i, H_i, W_i)`` tensors. Returns a scalar.
    """
    if len(feats_a) != len(feats_b):
        raise ValueError(f"feature lists differ in length: {len(feats_a)} vs {len(feats_b)}")
    return sum((F.l1_loss(a, b) for a, b in zip(feats_a, feats_b)), torch.zeros((), device=feats_a[0].device))


def gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``(B, C, C)`` of features ``x`` ``(B, C, H, W)``, normalised by ``C*H*W``.

    Computed in float32 (Gram products overflow easily in half precision).
    """
    b, c, h, w = x.shape
    f = x.float().reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / float(c * h * w)


def style_loss(feats_a: Sequence[torch.Tensor], feats_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the mean L1 distance between Gram matrices (see :func:`gram`). Scalar."""
    if len(feats_a) != len(feats_b):
        raise ValueError(f"feature lists differ in length: {len(feats_a)} vs {len(feats_b)}")
    return sum((F.l1_loss(gram(a), gram(b)) for a, b in zip(feats_a, feats_b)), torch.zeros((), device=feats_a[0].device))


def perceptual_and_style(
    vgg: Optional[VGG16Features],
    out: torch.Tensor,
    comp: torch.Tensor,
    target: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Perceptual and style losses on both the raw and the composited output, as LBAM does.

    ``l_perc = perceptual(vgg(out), vgg(target)) + perceptual(vgg(comp), vgg(target))`` and likewise
    ``l_style`` with :func:`style_loss`; both unweighted (the recipe applies 0.05 and 120).

    Args:
        vgg: the extractor from :func:`build_vgg`, or ``None`` to disable both terms.
        out: raw generator output ``(B, 3, H, W)`` in [0, 1].
        comp: composite ``out * hole + target * (1 - hole)`` ``(B, 3, H, W)`` in [0, 1].
        target: ground truth ``(B, 3, H, W)`` in [0, 1] (no gradient is taken through it).
    Returns:
        ``(l_perc, l_style)`` scalar tensors; both are constant zeros when ``vgg`` is ``None``.
    """
    if vgg is None:
        zero = out.new_zeros(())
        return zero, zero.clone()
    b = out.shape[0]
    with torch.no_grad():
        f_t = [f.detach() for f in vgg(target)]
    feats = vgg(torch.cat([out, comp], dim=0))  # one pass for both
    f_o = [f[:b] for f in feats]
    f_c = [f[b:] for f in feats]
    l_perc = perceptual_loss(f_o, f_t) + perceptual_loss(f_c, f_t)
    l_style = style_loss(f_o, f_t) + style_loss(f_c, f_t)
    return l_perc, l_style


# --------------------------------------------------------------------------------------------------
# WGAN-GP (Edge-LBAM)
# --------------------------------------------------------------------------------------------------
def gradient_penalty(
    critic: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *extra_inputs: torch.Tensor,
    weight: float = 10.0,
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * mean((||grad_x critic(x_hat, *extra)||_2 - 1)^2)``.

    ``x_hat = a * real + (1 - a) * fake`` with one ``a ~ U[0, 1)`` per sample; ``fake`` is detached.
    ``extra_inputs`` are passed to the critic unchanged (e.g. the hole mask ``(B, 1, H, W)`` of
    :class:`~lbam.training.discriminators.TwoColumnDiscriminator`). The graph is kept
    (``create_graph=True``) so the penalty backpropagates into the critic's parameters.

    Args:
        real, fake: ``(B, ...)`` tensors of the same shape. Returns a scalar.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    b = real.shape[0]
    alpha = torch.rand((b,) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat, *extra_inputs)
    (grads,) = torch.autograd.grad(
        outputs=scores,
        inputs=x_hat,
        grad_outputs=torch.ones_like(scores),
        create_graph=True,
        retain_graph=True,
    )
    norms = grads.reshape(b, -1).norm(2, dim=1)
    return weight * ((norms - 1.0) ** 2).mean()


def wgan_critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Critic loss ``mean(d_fake) - mean(d_real)`` (add :func:`gradient_penalty`). Scores of any shape."""
    return d_fake.mean() - d_real.mean()


def wgan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Generator adversarial loss ``-mean(d_fake)`` (weighted 0.1 in the Edge-LBAM recipe)."""
    return -d_fake.mean()


# --------------------------------------------------------------------------------------------------
# Non-saturating GAN + feature matching (MECNet / EdgeConnect)
# --------------------------------------------------------------------------------------------------
def ns_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss ``(BCE(real, 1) + BCE(fake, 0)) / 2`` on raw logits (EdgeConnect's halving)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def ns_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``BCE(fake, 1)`` on raw logits."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def patch_hole_weights(hole: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Which patches of a PatchGAN's ``(B, 1, h, w)`` logit map see the hole: the hole mask ``(B, 1, H, W)``
    (1 = hole) max-pooled to ``size = (h, w)``; values in [0, 1] (1 = the patch's window holds hole pixels)."""
    return F.adaptive_max_pool2d(hole.float(), tuple(size))


def masked_ns_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, fake_weights: torch.Tensor
                     ) -> torch.Tensor:
    """PatchGAN discriminator loss for inpainting: ``(BCE(real, 1) + BCE_w(fake, 0)) / 2``.

    Every real patch is real; a fake patch counts with its ``fake_weights`` (``patch_hole_weights``: patches of
    the composite that see no hole are the truth itself, and calling them fake would teach nothing). Logits and
    weights ``(B, 1, h, w)``; returns a scalar (the fake half is 0 when no patch sees the hole)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits), reduction="none")
    fake = (fake * fake_weights).sum() / fake_weights.sum().clamp(min=1.0)
    return 0.5 * (real + fake)


def masked_ns_g_loss(fake_logits: torch.Tensor, fake_weights: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``BCE(fake, 1)`` over the patches that see the hole (``fake_weights``,
    ``(B, 1, h, w)`` as the logits). Scalar; 0 when no patch sees the hole."""
    loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits), reduction="none")
    return (loss * fake_weights).sum() / fake_weights.sum().clamp(min=1.0)


def feature_matching_loss(
    real_feats: Sequence[torch.Tensor],
    fake_feats: Sequence[torch.Tensor],
    reduction: str = "mean",
) -> torch.Tensor:
    """L1 feature matching between discriminator activations (the 5 PatchGAN layers).

    Per layer the mean L1 between ``fake_feats[i]`` and ``real_feats[i].detach()``; the per-layer
    values are averaged (``reduction="mean"``, default) or summed (``"sum"``, what EdgeConnect's code
    does, i.e. 5x larger). The recipe weights this term by 10.
    """
    if len(real_feats) != len(fake_feats) or not real_feats:
        raise ValueError(f"need equal, non-empty feature lists, got {len(real_feats)} and {len(fake_feats)}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    total = sum(F.l1_loss(f, r.detach()) for r, f in zip(real_feats, fake_feats))
    return total / len(real_feats) if reduction == "mean" else total


def edge_bce(
    pred_prob: torch.Tensor,
    target: torch.Tensor,
    hole: Optional[torch.Tensor] = None,
    pos_weight: Union[None, float, str, torch.Tensor] = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Binary cross-entropy of an edge map, the cheap stand-in loss for MECNet without a GAN.

    ``loss = -(w_pos * t * log p + (1 - t) * log(1 - p))`` with ``p`` clamped to ``[eps, 1 - eps]``
    (computed in float32, safe under autocast).

    Args:
        pred_prob: predicted edge probabilities ``(B, 1, H, W)`` in [0, 1] (after the sigmoid).
        target: edge map ``(B, 1, H, W)``, 1 = edge (soft values in [0, 1] allowed).
        hole: optional mask ``(B, 1, H, W)``, 1 = hole; when given the loss is averaged over hole
            pixels only (known-region edges are given to MECNet anyway); an all-known mask yields 0.
        pos_weight: ``None`` (plain BCE), a number / tensor weighting edge pixels, or ``"balanced"``
            to weight them by ``#non-edge / #edge`` of the (hole region of the) batch, since edges are
            only ~5-10 % of the pixels.
    Returns:
        scalar tensor.
    """
    p = pred_prob.float().clamp(eps, 1.0 - eps)
    t = target.float().to(p.device)
    region = None if hole is None else hole.float().expand_as(p)
    if pos_weight is None:
        w_pos: Union[float, torch.Tensor] = 1.0
    elif isinstance(pos_weight, str):
        if pos_weight != "balanced":
            raise ValueError(f"pos_weight must be None, a number, a tensor or 'balanced', got {pos_weight!r}")
        with torch.no_grad():
            tt = t if region is None else t * region
            n_all = t.numel() if region is None else region.sum()
            n_pos = tt.sum()
            w_pos = ((n_all - n_pos) / n_pos.clamp(min=1.0)).clamp(min=1.0)
    else:
        w_pos = pos_weight
    loss = -(w_pos * t * torch.log(p) + (1.0 - t) * torch.log1p(-p))
    if region is None:
        return loss.mean()
    return (loss * region).sum() / region.sum().clamp(min=1.0)


# --------------------------------------------------------------------------------------------------
# Sharpness and grid artefacts (no ImageNet weights needed)
# --------------------------------------------------------------------------------------------------
#: side of the box over which gradient_statistics_loss compares local gradient energy
GRADIENT_WINDOW = 7


def gradient_statistics_loss(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Local gradient energy of the fill against the truth's, in the hole.

    ``mean_hole |box(|Sobel(gray(out))|) - box(|Sobel(gray(target))|)|`` with a ``GRADIENT_WINDOW`` box. It
    compares how much texture each neighbourhood holds, not where each gradient lies, so a fill cannot
    lower it by blurring (what a pixel loss prefers when the hole's content is uncertain).
    out, target (B,3,H,W) in [0,1]; hole (B,1,H,W), 1 = hole. Returns a scalar (0 when nothing is a hole).
    """
    k, pad = GRADIENT_WINDOW, GRADIENT_WINDOW // 2

    def local(x):
        return F.avg_pool2d(sobel_magnitude(rgb_to_gray(x.float())), k, 1, pad, count_include_pad=False)

    diff = (local(out) - local(target)).abs()
    return (diff * hole).sum() / hole.sum().clamp(min=1.0)


def grid_loss(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor, periods: Sequence[int] = (2, 4)
              ) -> torch.Tensor:
    """Grid (checkerboard) energy of the fill in excess of the truth's, over windows mostly in the hole.

    ``sum_period mean(relu(grid_energy(out) - grid_energy(target)) * f) / mean(f)`` with f the hole share of
    each window (``metrics.grid_energy``, ``metrics.window_fraction``). Zero when the fill holds no more
    period-2 (and period-4) pattern than the truth. Shapes as ``gradient_statistics_loss``; scalar.
    """
    total = out.new_zeros(())
    for period in periods:
        f = window_fraction(hole.float(), period)
        excess = F.relu(grid_energy(out.float(), period) - grid_energy(target.float(), period))
        total = total + (excess * f).sum() / f.sum().clamp(min=1.0)
    return total
