"""Device and batch sizes, chosen in one place for inference and training."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Compute:
    """Where the networks run and how many items go into one forward pass."""

    device: torch.device
    detect_batch: int  # frames per MTCNN call
    classify_batch: int  # face crops per ResNet forward pass
    threads: int = 1  # torch intra-op threads (each model stage; decode/encode run in their own threads)
    chunk_bytes: int = 64 << 20  # decoded RGB frames per chunk at most; up to 7 chunks are alive at once

    def chunk_frames(self, detect_every: int, width: int, height: int) -> int:
        """Frames decoded and processed together: enough for ``detect_batch`` detections per MTCNN call (MTCNN
        costs less per frame in a batch), capped at ``chunk_bytes`` of RGB so large frames stream in small
        chunks (memory stays flat and bounded whatever the size and length of the video)."""
        wanted = self.detect_batch * max(1, detect_every)
        cap = self.chunk_bytes // max(1, width * height * 3)
        return max(1, min(wanted, cap))


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_device(requested: str | None = "auto", cuda_available: bool | None = None) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:N`` as asked (clear error if absent)."""
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    name = (requested or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if has_cuda else "cpu")
    if name.startswith("cuda") and not has_cuda:
        raise ValueError(f"device {requested!r} asked for but CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {requested!r} (use auto, cpu or cuda[:N])") from exc


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bfloat16 maths in hardware: a CUDA GPU that supports it, or a CPU with AMX tiles
    (Intel Sapphire Rapids and later) or with AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake). On both kinds
    of CPU, bf16 halves the cost of our ResNet18 at 48 px: a training step 2.38 -> 1.03 s (Intel Xeon with AMX)
    and 2.80 -> 1.40 s (AMD EPYC Zen 4), a face crop 7.00 -> 3.44 CPU-ms (the EPYC; ``benchmarks/micro.py
    train-step``, ``classify-precision``). Without either, autocast emulates bf16 and gains nothing."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":  # torch's own CPU probes (private, so guarded)
        probes = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
        return any(bool(probe and probe()) for probe in probes)
    return False


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for training on ``device``: ``bf16`` or ``fp32`` (None: no autocast) as asked, or
    ``auto``: bf16 where the hardware does it natively, fp32 elsewhere."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"unknown precision {precision!r} (use auto, bf16 or fp32)")
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        return torch.bfloat16
    return None


def choose_compute(requested: str | None = "auto", cuda_available: bool | None = None) -> Compute:
    """Device plus batch sizes: a GPU takes many frames per call; on a CPU small batches keep latency and memory low."""
    device = resolve_device(requested, cuda_available)
    cores = cpu_cores()
    if device.type == "cuda":
        # the GPU does the maths; a couple of CPU threads feed it (crops, NMS bookkeeping)
        return Compute(device, detect_batch=32, classify_batch=256, threads=min(cores, 4), chunk_bytes=256 << 20)
    # every core for each model stage: detection (a chunk ahead) and classification run at the same time in two
    # threads, and decoding and encoding in theirs; torch's threads wait passively (OMP_WAIT_POLICY), so
    # whichever stage is busy gets the cores (half the cores each was slower with many faces, where
    # classification dominates: docs/performance.md); MTCNN on 4 frames per call: 61 CPU-ms per 640x360 frame,
    # 76 one at a time, 74 eight at a time (benchmarks/micro.py cascade --threads 2)
    return Compute(device, detect_batch=4, classify_batch=64, threads=cores)


def apply_threads(compute: Compute) -> None:
    """Set torch's intra-op thread count deliberately (torch's own default ignores the affinity mask)."""
    if torch.get_num_threads() != compute.threads:
        torch.set_num_threads(compute.threads)


@dataclass(frozen=True)
class WorkerPlan:
    """How a Ray batch is shaped: how many workers (one model copy each), and the CPUs (= torch threads) and
    GPUs each one asks Ray for."""

    workers: int
    cpus: int
    gpus: int = 0
    note: str = ""  # why fewer workers than asked, if so


def plan_workers(node_cpus: list[int], node_gpus: list[int], workers: int | None = None) -> WorkerPlan:
    """Workers for a cluster whose nodes have ``node_cpus`` and ``node_gpus``: with GPUs one worker per GPU
    (``num_gpus=1``, a few CPU threads to feed it); else ``workers`` (default: one per 2 cores) with the cores
    split evenly between them. Each worker must fit on one node, so a worker gets at most a node's cores, and
    there are never more workers than fit (more would wait for resources forever)."""
    total_cpus, total_gpus = sum(node_cpus), sum(node_gpus)
    if total_gpus >= 1:
        wanted = workers or total_gpus
        n = min(wanted, total_gpus)
        cpus = max(1, min(4, total_cpus // n if total_cpus else 1))
        while cpus > 1 and sum(min(g, c // cpus) for c, g in zip(node_cpus, node_gpus, strict=True)) < n:
            cpus -= 1
        note = f"{wanted} workers asked for, {n} GPUs: {n} workers" if n < wanted else ""
        return WorkerPlan(n, cpus, 1, note)
    wanted = workers or max(1, total_cpus // 2)
    cpus = max(1, total_cpus // max(1, wanted))
    while cpus > 1 and sum(c // cpus for c in node_cpus) < wanted:
        cpus -= 1
    n = max(1, min(wanted, sum(c // cpus for c in node_cpus)))
    note = f"{wanted} workers asked for, {total_cpus} CPUs: {n} workers" if n < wanted else ""
    return WorkerPlan(n, cpus, 0, note)
