"""Picking where the models run (CUDA, Apple MPS or CPU) and in which dtype.

Notebook 06 teaches the choice (``rag_helpers.generation.pick_device`` and
``pick_dtype``); these are the package's versions, which also check a device
that is asked for by name. On every combination of hardware they choose as
the taught functions do (tests/test_generation.py). Infrastructure imports no
course module, so the few lines of the choice are written here once more.
"""
from __future__ import annotations

import torch

__all__ = ["pick_device", "pick_dtype"]


def pick_device(device: str | None = None) -> str:
    """The device to run on: the one asked for, else CUDA, then Apple MPS, then CPU.

    Raises ``ValueError`` if the device asked for is not available here.
    """
    if device is None:
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but no CUDA GPU is available here")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was asked for, but Apple MPS is not available here")
    if kind not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def pick_dtype(device: str) -> torch.dtype:
    """A dtype that suits the device.

    bfloat16 on GPUs that support it (it keeps float32's range); float16 on
    older GPUs (a T4 emulates bf16 slowly) and on MPS; float32 on the CPU,
    where half-precision matrix products are usually slower, not faster.
    """
    kind = device.split(":")[0]
    if kind == "cuda":
        # Native bf16 arrived with compute capability 8 (Ampere); older cards
        # such as Colab's T4 only emulate it.
        major, _ = torch.cuda.get_device_capability(torch.device(device))
        return torch.bfloat16 if major >= 8 else torch.float16
    if kind == "mps":
        return torch.float16
    return torch.float32
