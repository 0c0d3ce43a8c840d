"""Benchmark options: the :class:`Options` dataclass and the command line (``lbam bench --help``)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

DEFAULT_OUT = Path("benchmarks") / "results"
DESCRIPTION = "Speed and memory benchmark: ``lbam bench`` or ``python benchmarks/run.py`` (same options)."


# ------------------------------------------------------------------------------------------------ options

@dataclass
class Options:
    """Everything a run depends on (see ``lbam bench --help``)."""

    out: str = str(DEFAULT_OUT)
    quick: bool = False
    repeats: int = 5
    e2e_repeats: int = 5
    threads: Optional[int] = None
    reference_config: str = "paper"
    default_config: str = "compact"
    crop_size: int = 256
    batch_sizes: Tuple[int, ...] = (1, 4, 8)
    sizes: Tuple[Tuple[int, int], ...] = ((2048, 1536), (4096, 3072))
    holes: Tuple[float, ...] = (0.05, 0.25)
    weights: Optional[str] = None
    sections: Tuple[str, ...] = ("crops", "ablation", "e2e", "precision", "gpu")
    gpu_batch_sizes: Tuple[int, ...] = (1, 4, 8, 16)
    seed: int = 0


SECTIONS = ("crops", "ablation", "e2e", "precision", "gpu")


def _ints(s: str) -> Tuple[int, ...]:
    return tuple(int(v) for v in s.split(",") if v.strip())


def _sizes(s: str) -> Tuple[Tuple[int, int], ...]:
    out = []
    for item in s.split(","):
        w, h = item.lower().split("x")
        out.append((int(w), int(h)))
    return tuple(out)


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lbam bench", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help=f"output folder for results.json / results.md (default {DEFAULT_OUT})")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (for tests; numbers meaningless)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per CPU case (default 5; quick 1)")
    p.add_argument("--e2e-repeats", type=int, default=None, help="timed repeats per end-to-end case (default 5)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's choice; quick: 1). On a machine busy with other work, "
                        "1 thread avoids OpenMP oversubscription")
    p.add_argument("--reference-config", default=None, help="the paper-size configuration (default paper)")
    p.add_argument("--default-config", default=None, help="the default configuration (default compact)")
    p.add_argument("--crop-size", type=int, default=None, help="crop side (default 256)")
    p.add_argument("--batch-sizes", type=_ints, default=None, help="e.g. 1,4,8 (default)")
    p.add_argument("--sizes", type=_sizes, default=None, help="end-to-end sizes WxH,... (default 2048x1536,4096x3072)")
    p.add_argument("--holes", type=lambda s: tuple(float(v) for v in s.split(",")), default=None,
                   help="end-to-end hole fractions (default 0.05,0.25)")
    p.add_argument("--weights", default=None,
                   help="end-to-end weights: a name / folder for Inpainter.from_pretrained, or random:<config> "
                        "(default: the bundled default, else random compact)")
    p.add_argument("--only", type=lambda s: tuple(v for v in s.split(",") if v), default=None,
                   help=f"run only these sections, comma separated, of {','.join(SECTIONS)}")
    p.add_argument("--skip", type=lambda s: tuple(v for v in s.split(",") if v), default=(),
                   help="skip these sections")
    p.add_argument("--gpu-batch-sizes", type=_ints, default=None, help="GPU batch sizes (default 1,4,8,16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def parse_args(argv: Sequence[str]) -> Options:
    """Command-line arguments -> :class:`Options` (quick mode fills in small defaults)."""
    a = _build_parser().parse_args(list(argv))
    o = Options()
    if a.quick:
        o = Options(quick=True, repeats=1, e2e_repeats=1, threads=1, reference_config="tiny-paper",
                    default_config="tiny", crop_size=128, batch_sizes=(1, 2), sizes=((320, 240),),
                    holes=(0.05, 0.25), weights="random:tiny", gpu_batch_sizes=(1, 2))
    for name in ("out", "repeats", "e2e_repeats", "threads", "reference_config", "default_config", "crop_size",
                 "batch_sizes", "sizes", "holes", "weights", "gpu_batch_sizes"):
        v = getattr(a, name)
        if v is not None:
            setattr(o, name, v)
    o.seed = a.seed
    sections = a.only if a.only is not None else SECTIONS
    unknown = set(sections) | set(a.skip)
    unknown -= set(SECTIONS)
    if unknown:
        raise SystemExit(f"lbam bench: unknown section(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    o.sections = tuple(s for s in SECTIONS if s in sections and s not in a.skip)
    if o.repeats < 1 or o.e2e_repeats < 1:
        raise SystemExit("lbam bench: repeats must be >= 1")
    if not o.batch_sizes or min(o.batch_sizes) < 1:
        raise SystemExit("lbam bench: batch sizes must be >= 1")
    o.batch_sizes = tuple(sorted(set(o.batch_sizes) | {1}))
    return o
