"""One optimisation step per stage: the losses of docs/ARCHITECTURE.md section 5 (or the ``fast`` recipe's).

``Networks`` holds the models, their discriminators and optimisers; ``train_step`` runs one step of the
configured stage on a batch and returns the scalar losses for the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import nn

from ..compose import composite, decode_edges, merge_edges
from ..models import pyramid_fill
from ..tiling import add_detail
from . import losses as L
from .config import TrainConfig


@dataclass
class Networks:
    mecnet: nn.Module
    generator: nn.Module
    opt_mecnet: torch.optim.Optimizer
    opt_generator: torch.optim.Optimizer
    edge_disc: Optional[nn.Module] = None
    opt_edge_disc: Optional[torch.optim.Optimizer] = None
    critic: Optional[nn.Module] = None
    opt_critic: Optional[torch.optim.Optimizer] = None
    vgg: Optional[nn.Module] = None


def _edge_step(cfg: TrainConfig, nets: Networks, gray, edge_prob, target, hole, logs) -> torch.Tensor:
    """MECNet loss (and its discriminator update when adversarial). Returns the MECNet loss."""
    if cfg.edge_loss == "bce":
        pos = None if cfg.edge_pos_weight == 1.0 else cfg.edge_pos_weight
        loss = L.edge_bce(edge_prob, target, hole=hole, pos_weight=pos)
        logs["edge_bce"] = loss.item()
        return loss
    real_in = torch.cat((target, gray), 1)
    fake_in = torch.cat((edge_prob, gray), 1)
    d_real, _ = nets.edge_disc(real_in)
    d_fake, _ = nets.edge_disc(fake_in.detach())
    d_loss = L.ns_d_loss(d_real, d_fake)
    nets.opt_edge_disc.zero_grad(set_to_none=True)
    d_loss.backward()
    nets.opt_edge_disc.step()
    g_fake, fake_feats = nets.edge_disc(fake_in)
    with torch.no_grad():
        _, real_feats = nets.edge_disc(real_in)
    adv = L.ns_g_loss(g_fake)
    fm = L.feature_matching_loss(real_feats, fake_feats)
    logs.update(edge_d=d_loss.item(), edge_adv=adv.item(), edge_fm=fm.item())
    loss = adv + cfg.edge_fm_weight * fm
    if cfg.edge_bce_weight > 0:
        bce = L.edge_bce(edge_prob, target, hole=hole)
        logs["edge_bce"] = bce.item()
        loss = loss + cfg.edge_bce_weight * bce
    return loss


def _generator_losses(cfg: TrainConfig, nets: Networks, image, hole, out, logs,
                      refine: Optional[torch.Tensor] = None) -> torch.Tensor:
    comp = composite(image, out, hole)
    pixel = L.hole_l1 if cfg.pixel_loss == "l1" else L.hole_mse
    loss = pixel(out, image, hole, cfg.l1_hole, cfg.l1_valid)
    logs[cfg.pixel_loss] = loss.item()
    if cfg.w_grad > 0:
        # "refine": the texture term only in the holes of refinement samples (the coarse pass stays L2-optimal)
        where = hole if cfg.w_grad_on == "all" or refine is None else hole * (refine > 0.5).to(hole.dtype)
        grad = L.gradient_statistics_loss(out, image, where)
        loss = loss + cfg.w_grad * grad
        logs["grad"] = grad.item()
    if cfg.w_grid > 0:
        grid = L.grid_loss(out, image, hole)
        loss = loss + cfg.w_grid * grid
        logs["grid"] = grid.item()
    if nets.vgg is not None and (cfg.w_perc > 0 or cfg.w_style > 0):
        perc, style = L.perceptual_and_style(nets.vgg, out, comp, image)
        loss = loss + cfg.w_perc * perc + cfg.w_style * style
        logs.update(perc=perc.item(), style=style.item())
    if nets.critic is not None and cfg.uses_critic:
        adversarial = _patch_adversarial if cfg.critic == "patch" else _two_column_adversarial
        loss = loss + adversarial(cfg, nets, image, comp, hole, logs)
    return loss


def _two_column_adversarial(cfg: TrainConfig, nets: Networks, image, comp, hole, logs) -> torch.Tensor:
    """The paper's term: one WGAN-GP update of the two-column critic, then ``w_adv * -critic(comp)``."""
    d_real = nets.critic(image, hole)
    d_fake = nets.critic(comp.detach(), hole)
    gp = L.gradient_penalty(nets.critic, image, comp.detach(), hole, weight=cfg.gp_weight)
    c_loss = L.wgan_critic_loss(d_real, d_fake) + gp
    nets.opt_critic.zero_grad(set_to_none=True)
    c_loss.backward()
    nets.opt_critic.step()
    adv = L.wgan_generator_loss(nets.critic(comp, hole))
    logs.update(critic=c_loss.item(), adv=adv.item())
    return cfg.w_adv * adv


def _patch_adversarial(cfg: TrainConfig, nets: Networks, image, comp, hole, logs) -> torch.Tensor:
    """The ``patch`` critic (a PatchGAN on ``cat(image, hole)``): one non-saturating update on the truth against
    the composite's patches that see the hole, then ``w_adv * adversarial + w_fm * feature matching`` for the
    generator (the critic's layers on the composite against the truth's, a perceptual loss learned on the data)."""
    real_in, fake_in = torch.cat((image, hole), 1), torch.cat((comp, hole), 1)
    nets.critic.requires_grad_(True)
    d_real, _ = nets.critic(real_in)
    d_fake, _ = nets.critic(fake_in.detach())
    weights = L.patch_hole_weights(hole, d_fake.shape[-2:])
    c_loss = L.masked_ns_d_loss(d_real, d_fake, weights)
    nets.opt_critic.zero_grad(set_to_none=True)
    c_loss.backward()
    nets.opt_critic.step()
    nets.critic.requires_grad_(False)  # the generator's terms below need no gradient for the critic's weights
    g_fake, fake_feats = nets.critic(fake_in)
    adv = L.masked_ns_g_loss(g_fake, weights)
    term = cfg.w_adv * adv
    logs.update(critic=c_loss.item(), adv=adv.item())
    if cfg.w_fm > 0:
        with torch.no_grad():
            _, real_feats = nets.critic(real_in)
        fm = L.feature_matching_loss(real_feats, fake_feats)
        term = term + cfg.w_fm * fm
        logs["fm"] = fm.item()
    return term


def generator_output(generator: nn.Module, image: torch.Tensor, hole: torch.Tensor, edge: torch.Tensor,
                     prefill: Optional[torch.Tensor] = None, refine: Optional[torch.Tensor] = None) -> torch.Tensor:
    """What the losses see of the generator, (B, 3, H, W) float32 in [0, 1].

    image (B, 3, H, W) in [0, 1]; hole (B, 1, H, W) 1 = hole; edge (B, 1, H, W) the merged edges. Without
    ``prefill``: the generator's plain output (its own push-pull prefill). With ``prefill`` (B, 3, H, W), the
    upscaled coarser fill of a refinement pass: ``lbam.tiling.add_detail(prefill, output)``, what the
    ``pyramid`` strategy keeps. ``refine`` (B, 1, 1, 1), 1 = refinement sample: only those samples are treated
    so, the others as plain samples (one batch may mix both passes)."""
    if prefill is None:
        return generator(image, hole, edge).float()
    if refine is None or bool((refine > 0.5).all()):
        return add_detail(prefill, generator(image, hole, edge, prefill=prefill).float())
    flag = refine > 0.5
    given = torch.where(flag, prefill, pyramid_fill(image, 1 - hole))
    raw = generator(image, hole, edge, prefill=given).float()
    return torch.where(flag, add_detail(prefill, raw), raw)


def train_step(cfg: TrainConfig, nets: Networks, batch: Dict[str, torch.Tensor], autocast,
               edge_decode: str = "none", edge_threshold: float = 0.5) -> Dict[str, float]:
    """One step of ``cfg.stage`` on ``batch`` (see data.py for its keys). Returns the logged losses. A batch with
    ``prefill`` trains the coarse-to-fine refinement: the generator gets it as its prefill, and the losses see
    ``lbam.tiling.add_detail(prefill, output)``, what the ``pyramid`` strategy keeps; with ``refine`` (B, 1, 1, 1)
    only the samples flagged 1 do, the others are plain samples (the generator's own push-pull prefill).
    edge_decode / edge_threshold: the model configuration's decoding of MECNet's output (``decode_edges``),
    applied to the edges the generator reads, as at inference. ``cfg.freeze_edges``: MECNet (in eval mode, set by
    the trainer) runs without gradient and is not updated. A batch with ``true_edges`` (B, 1, 1, 1) gives the
    generator of the samples flagged 1 the truth's Canny edges (``edges_full``) instead of MECNet's completion."""
    image, hole, gray = batch["image"], batch["hole"], batch["gray"]
    edges, target = batch["edges"], batch["edges_full"]
    logs: Dict[str, float] = {}
    total = 0.0
    train_edges = cfg.trains_edges
    train_gen = cfg.stage in ("inpaint", "joint")
    with autocast():
        if cfg.stage != "inpaint":  # frozen (freeze_edges): MECNet only completes the edges the generator reads
            with torch.set_grad_enabled(train_edges):
                edge_prob = nets.mecnet(gray, edges, hole)
        if train_edges:
            total = total + _edge_step(cfg, nets, gray, edge_prob.float(), target, hole, logs)
        if train_gen:
            if cfg.stage == "inpaint":
                edge = target  # the paper trains the generator on ground-truth edges first
            else:
                prob = edge_prob.detach() if cfg.detach_edges else edge_prob
                prob = decode_edges(prob, edge_decode, edge_threshold)
                edge = merge_edges(prob, edges, hole)
                if "true_edges" in batch:  # true_edge_share: these samples read the truth's edges instead
                    edge = torch.where(batch["true_edges"] > 0.5, target.to(edge.dtype), edge)
            out = generator_output(nets.generator, image, hole, edge, batch.get("prefill"), batch.get("refine"))
            total = total + _generator_losses(cfg, nets, image, hole, out, logs, batch.get("refine"))
    opts = ([nets.opt_mecnet] if train_edges else []) + ([nets.opt_generator] if train_gen else [])
    for opt in opts:
        opt.zero_grad(set_to_none=True)
    total.backward()
    if cfg.grad_clip > 0:
        for model, on in ((nets.mecnet, train_edges), (nets.generator, train_gen)):
            if on:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    for opt in opts:
        opt.step()
    logs["loss"] = total.item()
    return logs
