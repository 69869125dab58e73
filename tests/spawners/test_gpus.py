"""The GPU allocator both spawners share: no GPU, no hub; real SQLite files and real processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys
import threading
import types
from pathlib import Path

import pytest

from erumlab_spawners.gpus import AllGpusBusy, Device, GpuAllocator, discover_devices

FOUR = ["0", "1", "2", "3"]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "hub" / "gpu-allocations.sqlite"


# --- allocation ----------------------------------------------------------------------------


def test_two_owners_get_different_devices_and_a_retry_gets_the_same(state):
    gpus = GpuAllocator(state, FOUR)
    ada = gpus.allocate("ada/", 2, profile="gpu-2")
    bea = gpus.allocate("bea/", 1)
    assert ada == ["0", "1"] and bea == ["2"]
    # A hub retrying a spawn must not take more devices.
    assert gpus.allocate("ada/", 2, profile="gpu-2") == ada
    assert gpus.held_by("ada/") == ada and gpus.held_by("nobody/") == []
    assert [d["allocations"] for d in gpus.occupancy()] == [["ada/"], ["ada/"], ["bea/"], []]


def test_exhaustion_names_the_count_and_suggests_a_cpu_session(state):
    gpus = GpuAllocator(state, FOUR)
    for user in "abcd":
        gpus.allocate(f"{user}/", 1)
    with pytest.raises(AllGpusBusy) as busy:
        gpus.allocate("eve/", 1)
    assert str(busy.value) == ("All 4 GPUs are busy (4 sessions hold them); wait for one to free "
                               "up or start a CPU session.")
    assert (busy.value.total, busy.value.free, busy.value.requested) == (4, 0, 1)
    assert isinstance(busy.value, RuntimeError)
    assert gpus.held_by("eve/") == []


def test_busy_messages_for_partial_too_large_and_no_gpus(state, tmp_path):
    gpus = GpuAllocator(state, FOUR)
    gpus.allocate("ada/", 3)
    with pytest.raises(AllGpusBusy, match=r"Only 1 of 4 GPUs is free .* needs 2;.*CPU session"):
        gpus.allocate("bea/", 2)
    with pytest.raises(AllGpusBusy, match="needs 5 GPUs but the site has only 4"):
        gpus.allocate("bea/", 5)
    with pytest.raises(AllGpusBusy, match="^This site has no GPUs; start a CPU session.$"):
        GpuAllocator(tmp_path / "none.sqlite", []).allocate("bea/", 1)
    one = GpuAllocator(tmp_path / "one.sqlite", ["0"])
    one.allocate("ada/", 1)
    with pytest.raises(AllGpusBusy, match=r"^The only GPU is busy \(1 session holds it\)"):
        one.allocate("bea/", 1)


def test_release_frees_the_devices_for_the_next_user_and_twice_is_harmless(state):
    gpus = GpuAllocator(state, ["0", "1"])
    gpus.allocate("ada/", 2)
    assert gpus.release("ada/") == ["0", "1"]
    assert gpus.release("ada/") == []
    assert gpus.allocate("bea/", 2) == ["0", "1"]


def test_a_restarted_hub_sees_the_allocations_of_the_old_one(state):
    GpuAllocator(state, FOUR).allocate("ada/lab", 2)
    restarted = GpuAllocator(state, FOUR)
    assert restarted.held_by("ada/lab") == ["0", "1"]
    assert restarted.allocate("bea/", 2) == ["2", "3"]


def test_reconcile_releases_only_owners_whose_server_is_gone(state):
    gpus = GpuAllocator(state, FOUR)
    for owner in ("ada/", "bea/", "cyd/"):
        gpus.allocate(owner, 1)
    assert gpus.reconcile({"bea/", "someone-without-gpus/"}) == ["ada/", "cyd/"]
    assert gpus.held_by("bea/") == ["1"] and gpus.held_by("ada/") == []
    assert gpus.reconcile({"bea/"}) == []


def test_devices_removed_from_the_configuration(state):
    GpuAllocator(state, FOUR).allocate("ada/", 1)  # holds "0"
    GpuAllocator(state, FOUR).allocate("bea/", 1)  # holds "1"
    smaller = GpuAllocator(state, ["1", "2"])
    # Device 0 is gone: it is neither offered nor counted, and shows up as unconfigured.
    assert smaller.allocate("cyd/", 1) == ["2"]
    with pytest.raises(AllGpusBusy, match="All 2 GPUs are busy .2 sessions"):
        smaller.allocate("dan/", 1)
    assert smaller.occupancy()[-1] == {"id": "0", "allocations": ["ada/"], "share": 1,
                                       "configured": False}
    assert smaller.reconcile({"ada/", "bea/", "cyd/"}) == ["ada/"]
    assert [d["id"] for d in smaller.occupancy()] == ["1", "2"]


def test_an_allocation_of_another_shape_is_replaced_not_added_to(state):
    gpus = GpuAllocator(state, FOUR)
    gpus.allocate("ada/", 1)
    assert gpus.allocate("ada/", 2) == ["0", "1"]  # a leftover of an earlier start is replaced
    assert gpus.allocate("ada/", 1, share=2) == ["0"]
    assert gpus.held_by("ada/") == ["0"]


def test_count_zero_and_bad_arguments(state):
    gpus = GpuAllocator(state, FOUR)
    assert gpus.allocate("ada/", 0) == []
    with pytest.raises(ValueError, match="count must be at least 0"):
        gpus.allocate("ada/", -1)
    with pytest.raises(ValueError, match="share at least 1"):
        gpus.allocate("ada/", 1, share=0)
    with pytest.raises(ValueError, match="distinct"):
        GpuAllocator(state, ["0", "0"])


def test_zero_gpus_never_touches_the_file(state):
    gpus = GpuAllocator(state, FOUR)
    state.unlink()  # any connection would create it again
    assert gpus.allocate("ada/", 0) == []
    assert not state.exists()


def test_the_table_keeps_slot_profile_and_creation_time(state):
    gpus = GpuAllocator(state, ["0"])
    gpus.allocate("ada/", 1, share=2, profile="shared")
    gpus.allocate("bea/", 1, share=2, profile="shared")
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT device, slot, owner, profile, share, created_at "
                          "FROM gpu_allocation ORDER BY slot").fetchall()
    assert [row[:5] for row in rows] == [("0", 0, "ada/", "shared", 2), ("0", 1, "bea/", "shared", 2)]
    assert all(row[5].endswith("+00:00") for row in rows)


# --- sharing -------------------------------------------------------------------------------


def test_shared_sessions_fill_a_device_before_the_next_and_never_mix_with_exclusive(state):
    gpus = GpuAllocator(state, ["0", "1"])
    assert gpus.allocate("a/", 1, share=2) == ["0"]
    assert gpus.allocate("b/", 1, share=2) == ["0"]  # two sessions time-slice device 0
    assert gpus.allocate("c/", 1, share=2) == ["1"]  # the third goes to the next device
    # Device 0 is full, device 1 is shared: an exclusive session finds nothing.
    with pytest.raises(AllGpusBusy, match="All 2 GPUs are busy .3 sessions hold them"):
        gpus.allocate("x/", 1)
    # Nor does a session of another sharing mode take device 1's free slot.
    with pytest.raises(AllGpusBusy):
        gpus.allocate("y/", 1, share=4)
    assert gpus.occupancy() == [
        {"id": "0", "allocations": ["a/", "b/"], "share": 2, "configured": True},
        {"id": "1", "allocations": ["c/"], "share": 2, "configured": True}]
    gpus.release("c/")
    assert gpus.allocate("x/", 1) == ["1"]
    with pytest.raises(AllGpusBusy):
        gpus.allocate("d/", 1, share=2)  # and a shared session cannot take an exclusive device
    gpus.release("a/")
    assert gpus.allocate("d/", 1, share=2) == ["0"]  # the freed slot is used again


def test_threads_never_overfill_a_shared_device(state):
    gpus = GpuAllocator(state, FOUR)
    results: list[list[str] | str] = ["not run"] * 12
    start = threading.Barrier(12)

    def take(i: int) -> None:
        start.wait()
        try:
            results[i] = gpus.allocate(f"user{i}/", 1, share=2)
        except AllGpusBusy:
            results[i] = []
        except Exception as error:  # reported, so that the test fails saying why
            results[i] = repr(error)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [result for result in results if isinstance(result, str)] == []
    taken = sorted(d for result in results for d in result)
    assert taken == ["0", "0", "1", "1", "2", "2", "3", "3"]
    assert results.count([]) == 4


# --- several hub processes at once ---------------------------------------------------------


def _allocate_in_another_process(path: str, owner: str, start, results) -> None:  # noqa: ANN001
    allocator = GpuAllocator(Path(path), FOUR)
    start.wait()
    try:
        results.put((owner, allocator.allocate(owner, 1)))
    except AllGpusBusy as busy:
        results.put((owner, str(busy)))
    except Exception as error:  # reported, so that the test fails saying why
        results.put((owner, repr(error)))


def test_processes_allocating_at_once_never_share_a_device(state):
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as separate hubs are
    start, results = context.Barrier(8), context.Queue()
    processes = [context.Process(target=_allocate_in_another_process,
                                 args=(str(state), f"user{i}/", start, results))
                 for i in range(8)]
    for process in processes:
        process.start()
    answers = dict(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    granted = [ids for ids in answers.values() if isinstance(ids, list)]
    refused = [message for message in answers.values() if isinstance(message, str)]
    assert sorted(ids[0] for ids in granted) == FOUR and all(len(ids) == 1 for ids in granted)
    assert len(refused) == 4 and all(m.startswith("All 4 GPUs are busy") for m in refused)
    assert sum(len(d["allocations"]) for d in GpuAllocator(state, FOUR).occupancy()) == 4


# --- discovering devices -------------------------------------------------------------------


def test_a_configured_list_is_taken_as_is():
    assert discover_devices("0, 2,3") == [Device("0"), Device("2"), Device("3")]
    uuid = "GPU-8f3c2d1e-0000-1111-2222-333344445555"
    assert [d.id for d in discover_devices(f"0,{uuid}")] == ["0", uuid]
    assert discover_devices("none") == [] and discover_devices(" None ") == []


@pytest.mark.parametrize(("configured", "complaint"), [
    ("0,,1", "an empty device id"),
    ("0,1,", "an empty device id"),
    ("0,1,0", "0 named twice"),
    ("0 1", "'0 1' is not a device id"),
    ("0;1", "'0;1' is not a device id"),
])
def test_a_bad_configured_list_is_refused_naming_the_problem(configured, complaint):
    with pytest.raises(ValueError, match=complaint) as error:
        discover_devices(configured)
    assert repr(configured) in str(error.value)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch) -> Path:
    """A PATH of one empty folder, and no NVML (a machine with pynvml and a GPU would answer)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    return folder


def _script(folder: Path, body: str) -> None:
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def test_without_configuration_nvidia_smi_is_asked(bin_dir):
    _script(bin_dir, f'echo "$@" > {bin_dir}/args\n'
                     'echo "0, GPU-aaaa, NVIDIA A100-SXM4-40GB, 40960"\n'
                     'echo "1, GPU-bbbb, NVIDIA GeForce RTX 4090, [N/A]"')
    assert discover_devices(None) == discover_devices("") == [
        Device("0", name="NVIDIA A100-SXM4-40GB", memory_mb=40960, uuid="GPU-aaaa"),
        Device("1", name="NVIDIA GeForce RTX 4090", memory_mb=None, uuid="GPU-bbbb")]
    assert (bin_dir / "args").read_text().split() == [
        "--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"]


def test_no_nvidia_smi_means_no_gpus(bin_dir):
    assert discover_devices(None) == []


@pytest.mark.parametrize("body", [
    'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9',
    'echo "No devices were found"',
    "exec sleep 10",  # a wedged driver: the timeout gives up
])
def test_a_failing_nvidia_smi_means_no_gpus(bin_dir, body):
    _script(bin_dir, body)
    assert discover_devices(None, timeout=0.5) == []


def test_nvml_answers_when_nvidia_smi_is_missing(bin_dir, monkeypatch):
    handles = {0: ("Tesla T4", "GPU-cccc", 15360 * 2**20)}
    nvml = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=handles.__getitem__,
        nvmlDeviceGetName=lambda h: h[0].encode(), nvmlDeviceGetUUID=lambda h: h[1],
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=h[2]))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert discover_devices(None) == [Device("0", name="Tesla T4", memory_mb=15360, uuid="GPU-cccc")]
