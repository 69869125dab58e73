"""Choosing where tensors live: a GPU when one is there, the CPU otherwise."""

from __future__ import annotations

import os
import warnings

import torch


class DeviceUnavailable(RuntimeError):
    pass


def select_device(preferred: str = "auto", *, strict: bool = False) -> torch.device:
    """The device to compute on.

    ``preferred`` is "auto" (CUDA if available, else CPU), "cpu", "cuda" or
    "cuda:N". When a GPU is asked for but none is usable, the CPU is returned
    with a warning, so the same notebook runs on a laptop; ``strict=True``
    raises instead (for jobs queued on the ``gpu`` queue, where a silent CPU
    fallback would waste hours).
    """
    choice = preferred.strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if not choice.startswith("cuda"):
        raise ValueError(f"preferred: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {preferred!r}")
    device = torch.device(choice)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = device.index or 0
    if index < count:
        return device
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    reason = (f"{preferred!r} requested but {count} CUDA device(s) are usable "
              f"(CUDA_VISIBLE_DEVICES={visible})")
    if strict:
        raise DeviceUnavailable(reason)
    warnings.warn(f"{reason}; computing on the CPU instead", RuntimeWarning, stacklevel=2)
    return torch.device("cpu")
