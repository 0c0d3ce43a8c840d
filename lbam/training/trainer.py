"""The training loop: stages edge / inpaint / joint, EMA, AMP, time budget, exact resume, logs, DDP.

A run folder holds ``train_config.json``, ``checkpoint.pt`` (models, EMA, optimisers, step, RNG; read with
``weights_only=True``), ``train_log.csv``, ``val_log.csv`` and ``samples/step_*.png``. Launch with
``lbam train`` (one process) or ``torchrun --nproc_per_node N -m lbam train ...`` (DistributedDataParallel).
"""
from __future__ import annotations

import contextlib
import dataclasses
import copy
import csv
import json
import logging
import os
import time
from pathlib import Path
from typing import Dict, Iterator, Optional

import torch
from torch import nn

from ..models import EdgeLBAM, MECNet, get_config
from ..weights_io import read_weights_folder
from .config import TrainConfig
from .data import TrainImages, collate
from .steps import Networks, train_step
from .evaluate import evaluate, flat_row, save_samples

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"


class StepSampler(torch.utils.data.Sampler):
    """Sample indices for steps start, start+1, ...: rank r of W takes ``(step*W + r)*B + j``."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.b, self.rank, self.world = start_step, batch_size, rank, world

    def __iter__(self) -> Iterator[int]:
        step = self.start
        while True:
            base = (step * self.world + self.rank) * self.b
            yield from range(base, base + self.b)
            step += 1

    def __len__(self) -> int:  # effectively endless
        return 2**62


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(p, 1 - decay)
            else:
                e.copy_(p)


class Trainer:
    """Builds everything from a TrainConfig; ``run()`` trains until max_steps or max_minutes."""

    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            self.device = torch.device("cuda", local)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        torch.manual_seed(cfg.seed + self.rank)
        torch.set_flush_denormal(True)  # denormal activations slow CPU training down many times over
        self.model_config = get_config(cfg.model)
        decoding = {k: v for k, v in (("edge_decode", cfg.edge_decode), ("edge_threshold", cfg.edge_threshold))
                    if v is not None}
        if decoding:
            self.model_config = dataclasses.replace(self.model_config, **decoding)
        if cfg.smooth_upsampling is not None:
            self.model_config = self.model_config.with_smooth_upsampling(cfg.smooth_upsampling)
        self.step = 0
        self._build()
        if resume and (self.out / CHECKPOINT).exists():
            self.load_checkpoint(self.out / CHECKPOINT)
        elif self.rank == 0:
            (self.out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1))

    # ---- construction -------------------------------------------------------------------------
    def _build(self) -> None:
        cfg, mc = self.cfg, self.model_config
        mecnet, generator = MECNet(mc.mecnet), EdgeLBAM(mc.generator)
        if cfg.init:
            from ..hub import resolve

            init_cfg, mec_sd, gen_sd, _ = read_weights_folder(resolve(cfg.init))
            if init_cfg.parameter_layout() != mc.parameter_layout():
                raise ValueError(f"--init weights (configuration {init_cfg.name!r}) have another architecture than "
                                 f"the run ({mc.name!r})")
            mecnet.load_state_dict(mec_sd)
            generator.load_state_dict(gen_sd)
        if cfg.edge_loss == "gan":  # the paper's MECNet carries spectral normalization while training
            for m in mecnet.spectral_norm_modules():
                torch.nn.utils.spectral_norm(m)
        mecnet, generator = mecnet.to(self.device), generator.to(self.device)
        self.ema_mecnet, self.ema_generator = copy.deepcopy(mecnet).eval(), copy.deepcopy(generator).eval()
        nets = Networks(
            mecnet=mecnet, generator=generator,
            opt_mecnet=torch.optim.Adam(mecnet.parameters(), cfg.edge_lr, betas=cfg.edge_betas),
            opt_generator=torch.optim.Adam(generator.parameters(), cfg.lr, betas=cfg.betas),
        )
        from . import losses as L
        from .discriminators import PatchDiscriminator, TwoColumnDiscriminator

        # (built with freeze_edges too, unused: a checkpoint keeps the discriminator for a later unfrozen leg)
        if cfg.edge_loss == "gan" and cfg.stage != "inpaint":
            nets.edge_disc = PatchDiscriminator(2, cfg.edge_disc_width).to(self.device)
            nets.opt_edge_disc = torch.optim.Adam(nets.edge_disc.parameters(), cfg.edge_lr * cfg.disc_lr_ratio,
                                                  betas=cfg.edge_betas)
        if cfg.uses_critic and cfg.stage != "edge":
            critic = (PatchDiscriminator(4, cfg.critic_width) if cfg.critic == "patch"
                      else TwoColumnDiscriminator(3, cfg.critic_width))
            nets.critic = critic.to(self.device)
            nets.opt_critic = torch.optim.Adam(nets.critic.parameters(), cfg.lr * cfg.disc_lr_ratio, betas=cfg.betas)
        if cfg.w_perc > 0 or cfg.w_style > 0:
            vgg = L.build_vgg(cfg.vgg_weights)
            nets.vgg = vgg.to(self.device) if vgg is not None else None
        if self.world > 1:
            ddp = torch.nn.parallel.DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            nets.mecnet, nets.generator = ddp(mecnet, device_ids=ids), ddp(generator, device_ids=ids)
        self.nets = nets
        # the configured rates (a resumed checkpoint's optimiser state carries its last rates; these win)
        self._base_lr = {k: [g["lr"] for g in o.param_groups] for k, o in self._optimizers().items() if o is not None}

    def _set_lr(self) -> None:
        factor = self.cfg.lr_factor(self.step)
        for k, opt in self._optimizers().items():
            if opt is not None:
                for g, base in zip(opt.param_groups, self._base_lr[k]):
                    g["lr"] = base * factor

    def _modules(self) -> Dict[str, Optional[nn.Module]]:
        n = self.nets
        unwrap = lambda m: getattr(m, "module", m)  # noqa: E731
        return {"mecnet": unwrap(n.mecnet), "generator": unwrap(n.generator), "ema_mecnet": self.ema_mecnet,
                "ema_generator": self.ema_generator, "edge_disc": n.edge_disc, "critic": n.critic}

    def _optimizers(self) -> Dict[str, Optional[torch.optim.Optimizer]]:
        n = self.nets
        return {"opt_mecnet": n.opt_mecnet, "opt_generator": n.opt_generator,
                "opt_edge_disc": n.opt_edge_disc, "opt_critic": n.opt_critic}

    # ---- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        state = {"step": self.step, "config": self.cfg.to_dict(), "model_config": self.model_config.to_dict(),
                 "rng_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        for k, m in {**self._modules(), **self._optimizers()}.items():
            if m is not None:
                state[k] = m.state_dict()
        path = self.out / CHECKPOINT
        torch.save(state, path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
        return path

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        for k, m in {**self._modules(), **self._optimizers()}.items():
            if m is not None and k in state:
                m.load_state_dict(state[k])
        self.step = int(state["step"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)
        log.info("resumed %s at step %d", path, self.step)

    # ---- loop -------------------------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if self.cfg.cpu_bf16 and self.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _loader(self):
        cfg, mc = self.cfg, self.model_config
        if cfg.refine_factors and mc.generator.prefill != "pyramid":
            raise ValueError(f"refinement training needs a generator that takes a prefill; {mc.name!r} does not")
        ds = TrainImages(cfg.data, cfg.size, cfg.short_side, cfg.scale, cfg.mask_dir, cfg.hole_range, cfg.seed,
                         mc.canny_sigma, mc.canny_low, mc.canny_high, prefill_factors=cfg.refine_factors,
                         prefill_share=cfg.refine_share, prefill_short_side=cfg.refine_short_side,
                         true_edge_share=cfg.true_edge_share)
        sampler = StepSampler(self.step, cfg.batch_size, self.rank, self.world)
        return torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                                           collate_fn=collate, pin_memory=self.device.type == "cuda",
                                           persistent_workers=cfg.workers > 0)

    def _log_row(self, name: str, row: Dict[str, float]) -> None:
        path = self.out / name
        header = None
        if path.exists():  # a resumed run keeps the file's columns (new keys are dropped, missing ones blank)
            with path.open(newline="") as f:
                header = next(csv.reader(f), None)
        with path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=header or list(row), extrasaction="ignore")
            if not header:
                w.writeheader()
            w.writerow(row)

    def run(self, progress: bool = False) -> Dict[str, float]:
        """Train; checkpoint every ``checkpoint_minutes`` and at the end. Returns the last logged losses.

        The first step and the last one are always logged. progress: show a tqdm bar (step, loss, rate, ETA) on
        rank 0. Ctrl-C (KeyboardInterrupt) saves a checkpoint and returns with ``self.interrupted`` set, so the
        run can be exported or resumed."""
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        cfg = self.cfg
        self.interrupted = False
        first_step = self.step
        bar = tqdm(total=cfg.max_steps if cfg.max_steps < 10**9 else None, initial=self.step, unit="step",
                   disable=not progress or self.rank != 0, dynamic_ncols=True)
        t0 = time.monotonic()
        last_ckpt = t0
        writer = None
        if cfg.tensorboard and self.rank == 0:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out / "tb"))
        self.nets.mecnet.train(not cfg.freeze_edges)  # frozen: spectral norm's power iteration stops too
        self.nets.generator.train()
        logs: Dict[str, float] = {}
        acc: Dict[str, float] = {}
        n_acc = 0
        try:
            with logging_redirect_tqdm(), bar:
                for batch in self._loader():
                    if self.step >= cfg.max_steps or (time.monotonic() - t0) / 60 >= cfg.max_minutes:
                        break
                    logs, acc, n_acc = self._step(batch, t0, writer, acc, n_acc, first_step)
                    bar.update(1)
                    bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.4f}", refresh=False)
                    if self.rank == 0 and (time.monotonic() - last_ckpt) / 60 >= cfg.checkpoint_minutes:
                        self.save_checkpoint()
                        last_ckpt = time.monotonic()
        except KeyboardInterrupt:  # Ctrl-C: keep what was trained (the step it hit is dropped or complete)
            self.interrupted = True
            log.warning("interrupted at step %d: saving a checkpoint in %s", self.step, self.out)
        if self.rank == 0 and n_acc:  # a short run, or the steps since the last log row
            self._log_train(t0, acc, n_acc, writer)
        if self.rank == 0:
            self.save_checkpoint()
        return logs

    def _log_train(self, t0: float, acc: Dict[str, float], n_acc: int, writer) -> None:
        row = {"step": self.step, "minutes": round((time.monotonic() - t0) / 60, 3),
               # the learning rate of the network this stage trains (MECNet's in the edge stage)
               "lr": (self.nets.opt_mecnet if self.cfg.stage == "edge" else self.nets.opt_generator).param_groups[0]["lr"],
               **{k: round(v / n_acc, 6) for k, v in acc.items()}}
        self._log_row("train_log.csv", row)
        log.info("step %d %s", self.step, row)
        if writer:
            for k, v in row.items():
                writer.add_scalar(f"train/{k}", v, self.step)

    def _step(self, batch, t0: float, writer, acc: Dict[str, float], n_acc: int, first_step: int):
        """One step (with EMA), its log row (the first step of a launch, then every ``log_every``) and validation.
        Returns (losses, accumulated losses, number accumulated)."""
        cfg = self.cfg
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        self._set_lr()
        logs = train_step(cfg, self.nets, batch, self._autocast, self.model_config.edge_decode,
                          self.model_config.edge_threshold)
        self.step += 1
        decay = min(cfg.ema_decay, (1 + self.step) / (10 + self.step))
        _ema_update(self.ema_mecnet, self._modules()["mecnet"], decay)
        _ema_update(self.ema_generator, self._modules()["generator"], decay)
        for k, v in logs.items():
            acc[k] = acc.get(k, 0.0) + v
        n_acc += 1
        if self.rank == 0 and (self.step % cfg.log_every == 0 or self.step == first_step + 1):
            self._log_train(t0, acc, n_acc, writer)
            acc, n_acc = {}, 0
        if self.rank == 0 and cfg.val and self.step % cfg.val_every == 0:
            self.validate()
        return logs, acc, n_acc

    def validate(self) -> Dict[str, float]:
        """PSNR/SSIM per hole bucket of the EMA networks on the validation crops; logged to val_log.csv."""
        cfg, mc = self.cfg, self.model_config
        use_gt = cfg.stage == "inpaint"
        report = evaluate(self.ema_mecnet, self.ema_generator, cfg.val, mc, self.device,
                          per_image=cfg.val_per_image, gt_edges=use_gt)
        row = {"step": self.step, **flat_row(report)}
        self._log_row("val_log.csv", row)
        save_samples(self.ema_mecnet, self.ema_generator, cfg.val, mc, self.device,
                     self.out / "samples" / f"step_{self.step:07d}.png", gt_edges=use_gt)
        log.info("val step %d %s", self.step, row)
        return row
