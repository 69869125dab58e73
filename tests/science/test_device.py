from __future__ import annotations

import pytest
import torch

from erumlab.science.device import DeviceUnavailable, select_device


def test_auto_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback without a GPU")
def test_asking_for_a_missing_gpu_falls_back_to_the_cpu_with_a_warning():
    with pytest.warns(RuntimeWarning, match="computing on the CPU instead"):
        assert select_device("cuda").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback without a GPU")
def test_strict_mode_refuses_to_fall_back():
    with pytest.raises(DeviceUnavailable, match="CUDA device"):
        select_device("cuda:0", strict=True)


def test_a_misspelt_device_is_named():
    with pytest.raises(ValueError, match="'gpu0'"):
        select_device("gpu0")
