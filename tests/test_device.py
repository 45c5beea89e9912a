"""Device choice and batch sizes, exercised on a CPU-only machine by forcing what CUDA availability reports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from fer_video.device import autocast_dtype, choose_compute, resolve_device


def test_auto_picks_cuda_with_larger_batches_when_cuda_is_present():
    gpu = choose_compute("auto", cuda_available=True)
    cpu = choose_compute("auto", cuda_available=False)
    assert gpu.device == torch.device("cuda")
    assert cpu.device == torch.device("cpu")
    assert gpu.detect_batch > cpu.detect_batch
    assert gpu.classify_batch > cpu.classify_batch


@pytest.mark.parametrize("name", ["cuda", "cuda:1", " CUDA "])
def test_explicit_cuda_without_cuda_is_a_clear_error(name):
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(name, cuda_available=False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        choose_compute(name, cuda_available=False)


def test_explicit_devices_are_honoured():
    assert resolve_device("cpu", cuda_available=True) == torch.device("cpu")
    assert resolve_device("cuda:1", cuda_available=True) == torch.device("cuda", 1)
    assert choose_compute("cpu", cuda_available=True).device.type == "cpu"
    assert choose_compute("cuda:0", cuda_available=True).device == torch.device("cuda", 0)
    assert resolve_device(None, cuda_available=False) == torch.device("cpu")


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu", cuda_available=False)


def test_cpu_compute_keeps_batches_small_and_threads_deliberate():
    c = choose_compute("cpu", cuda_available=False)
    assert 1 <= c.detect_batch <= 16
    assert 1 <= c.classify_batch <= 128
    assert c.threads >= 1


def test_openmp_threads_do_not_spin_unless_the_user_says_so():
    """fer_video sets OMP_WAIT_POLICY=PASSIVE before torch loads (spinning threads starve the encoder)."""
    code = "import fer_video, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_chunks_hold_several_detections_but_stay_small_for_large_frames():
    cpu = choose_compute("cpu", cuda_available=False)
    assert cpu.chunk_frames(8, 1280, 720) >= 16  # at least two detections per MTCNN call at 720p
    assert cpu.chunk_frames(8, 1280, 720) * 1280 * 720 * 3 <= cpu.chunk_bytes
    assert 1 <= cpu.chunk_frames(8, 3840, 2160) <= 3  # 4K: a few frames per chunk, never many
    assert cpu.chunk_frames(1, 64, 64) == cpu.detect_batch  # detection on every frame: one MTCNN batch
    assert cpu.chunk_frames(8, 100000, 100000) == 1


def test_training_precision_is_bf16_only_where_the_hardware_does_it(monkeypatch):
    """--precision auto: bf16 autocast on a CPU with AMX tiles or AVX512-BF16 or on a bf16 GPU, fp32 elsewhere;
    bf16/fp32 as asked."""
    cpu = torch.device("cpu")
    bf16 = torch.bfloat16
    for amx, avx512_bf16, expected in ((False, False, None), (True, False, bf16), (False, True, bf16)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda a=amx: a)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda b=avx512_bf16: b)
        assert autocast_dtype(cpu, "auto") is expected
        assert autocast_dtype(cpu, "bf16") is torch.bfloat16
        assert autocast_dtype(cpu, "fp32") is None
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the probes: fp32
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert autocast_dtype(cpu, "auto") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for bf16_gpu, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda b=bf16_gpu: b)
        assert autocast_dtype(torch.device("cuda"), "auto") is expected
    with pytest.raises(ValueError, match="unknown precision"):
        autocast_dtype(cpu, "fp16")
