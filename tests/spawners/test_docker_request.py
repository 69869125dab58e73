"""The container request the production spawner makes for each profile (no Docker engine:
the request is captured where it would go to the engine, after docker-py built it)."""

from __future__ import annotations

from types import SimpleNamespace

import docker
import pytest
from jupyterhub.objects import Hub, Server

from erumlab.testing.aio import run_coroutine
from erumlab_spawners.docker import ErumlabDockerSpawner

CPU = {"slug": "cpu", "name": "CPU: 2 cores, 4 GB", "cpus": 2, "memory_gb": 4, "gpus": 0,
       "gpu_share": 1}
GPU2 = {"slug": "gpu-2", "name": "2 GPUs: 8 cores, 32 GB", "cpus": 8, "memory_gb": 32,
        "gpus": 2, "gpu_share": 1}


@pytest.fixture
def request_for(monkeypatch):
    # An API client that never connects: docker-py builds host configs offline.
    monkeypatch.setattr(ErumlabDockerSpawner, "client", property(
        lambda self: docker.APIClient(base_url="unix:///nonexistent.sock", version="1.45")))

    spawners: dict[str, ErumlabDockerSpawner] = {}  # the hub keeps one per user, reused

    def make(profile: dict, gpu_ids: list[str], username: str = "ada") -> dict:
        if username in spawners:
            return start(spawners[username], profile, gpu_ids)
        user = SimpleNamespace(name=username, id=1, url=f"/user/{username}/",
                               escaped_name=username, server=Server(base_url=f"/user/{username}/"),
                               settings={}, spawners={}, orm_user=None)
        spawner = ErumlabDockerSpawner(user=user, hub=Hub(), image="erumlab/singleuser:latest",
                                       network_name="erumlab", use_internal_ip=True, remove=True,
                                       api_token="hub-token", oauth_client_id="client")
        spawners[username] = spawner
        return start(spawner, profile, gpu_ids)

    def start(spawner: ErumlabDockerSpawner, profile: dict, gpu_ids: list[str]) -> dict:
        calls: dict[str, dict] = {}

        async def engine(method: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            calls[method] = kwargs
            if method == "inspect_image":
                return {"Config": {"Cmd": ["start-singleuser.sh"], "Entrypoint": None}}
            return {"Id": "container-id"}

        spawner.docker = engine
        spawner.gpu_ids = gpu_ids
        spawner._erumlab_env = {"ERUMLAB_URL": "http://web:8000", "ERUMLAB_API_TOKEN": "erl_x"}
        spawner.apply_profile(profile, gpu_ids)
        run_coroutine(spawner.create_object())
        return calls["create_container"]
    return make


def test_a_cpu_profile_gets_limits_its_home_volume_and_no_gpu(request_for):
    request = request_for(CPU, [])
    host = request["host_config"]
    assert host["CpuQuota"] == 2 * host["CpuPeriod"]
    assert host["Memory"] == 4 * 1024 ** 3
    assert host["Binds"] == ["erumlab-home-ada:/home/jovyan:rw"]
    assert host["NetworkMode"] == "erumlab"
    assert "DeviceRequests" not in host
    env = request["environment"]
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert env["ERUMLAB_URL"] == "http://web:8000" and env["ERUMLAB_API_TOKEN"] == "erl_x"
    assert request["image"] == "erumlab/singleuser:latest" and request["name"] == "jupyter-ada"
    # The server loads the extension that reports busy kernels to the idle culler.
    assert "--ServerApp.jpserver_extensions=erumlab.serverext=True" in request["command"]


def test_a_gpu_profile_requests_exactly_the_allocated_devices(request_for):
    request = request_for(GPU2, ["1", "3"], username="bea")
    host = request["host_config"]
    [device_request] = host["DeviceRequests"]
    assert device_request["Driver"] == "nvidia"
    assert device_request["DeviceIDs"] == ["1", "3"]
    assert device_request["Capabilities"] == [["gpu"]]
    assert host["CpuQuota"] == 8 * host["CpuPeriod"] and host["Memory"] == 32 * 1024 ** 3
    assert host["Binds"] == ["erumlab-home-bea:/home/jovyan:rw"]
    env = request["environment"]
    # Inside the container its two devices are numbered 0 and 1.
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["NVIDIA_VISIBLE_DEVICES"] == "1,3"


def test_a_later_cpu_start_of_the_same_user_drops_the_earlier_device_request(request_for):
    assert request_for(GPU2, ["0", "1"])["host_config"]["DeviceRequests"]
    again = request_for(CPU, [])
    assert "DeviceRequests" not in again["host_config"]
    assert again["host_config"]["Binds"] == ["erumlab-home-ada:/home/jovyan:rw"]
