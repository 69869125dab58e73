"""Model zoo: loading a model through the client (cache warm) vs torch loading the same
safetensors file directly.

    .venv/bin/python bench/zoo_load_bench.py [--params-m 25] [--repeats 7]

An "mlp" of about --params-m million float32 parameters (25 M: 100 MB) is
published through the client to a live portal (`erumlab web`, gunicorn), and
loaded once to fill the client's cache. Then, interleaved, --repeats times each:

- client: `Client(...).models.load(name)`: the version's metadata from the API,
  the cache check (SHA-256 marker and size, no re-hash), building the module
  and filling it from the cached safetensors file;
- direct: what one writes by hand with torch: `nn.build(architecture, config)`,
  `safetensors.torch.load_file(path)` and `module.load_state_dict(...)` on the
  same cached file.

Prints medians and bests, the ratio client / direct with PASS or FAIL, and a
breakdown: the client's metadata request and cache check, and on the direct
side building the module (its random initialisation) and filling it. For
reference it also times a floor that skips the random initialisation (module
built on the meta device, `load_state_dict(..., assign=True)`); the target is
measured against the plain direct load, not this floor.
Target: client load, cache warm <= 1.5 x direct load.

The client's cache is a temporary ERUMLAB_CACHE_DIR, removed at the end with
the temporary data dir. Runs on embedded defaults (temporary SQLite and Redis)
unless DATABASE_URL / REDIS_URL are set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchenv import bench_platform


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params-m", type=float, default=25.0,
                        help="millions of parameters of the benchmarked MLP")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="erumlab-bench-cache-"))
    os.environ["ERUMLAB_CACHE_DIR"] = str(cache)
    data_dir = None
    try:
        with bench_platform(ERUMLAB_QUOTA_USER_GB="1000") as data_dir:
            measure(args.params_m, args.repeats)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if data_dir is not None:  # the published weights live here (database, storage)
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def _config(params_m: float) -> dict:
    """Square hidden layers sized so that the MLP has about ``params_m`` million parameters."""
    layers = 4  # three width x width matrices between them carry nearly all parameters
    width = int((params_m * 1e6 / (layers - 1)) ** 0.5)
    return {"inputs": 64, "hidden": [width] * layers, "outputs": 8}


def measure(params_m: float, repeats: int) -> None:
    import torch
    from safetensors.torch import load_file

    from erumlab.accounts.models import User
    from erumlab.accounts.services import api_token_issue
    from erumlab.cli import web_argv
    from erumlab.client import Client
    from erumlab.client.datasets import cache_dir
    from erumlab.science import nn
    from erumlab.testing.processes import free_port, running, wait_for_http

    user = User.objects.create_user(username="bench", email="bench@example.org")
    token = api_token_issue(user=user, name="bench").secret
    config = _config(params_m)
    torch.manual_seed(0)
    module = nn.build("mlp", config)
    parameters = nn.parameter_count(module)
    signature = {"inputs": [{"name": "x", "shape": [None, 64], "dtype": "float32"}],
                 "outputs": [{"name": "y", "shape": [None, 8], "dtype": "float32"}]}

    port = free_port()
    os.environ.update(ERUMLAB_BIND=f"127.0.0.1:{port}", ERUMLAB_WEB_WORKERS="2")
    log = Path(os.environ["ERUMLAB_DATA_DIR"]) / "web.log"
    with running(web_argv(), env=dict(os.environ), log=log) as web:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60, process=web, log=log)
        client = Client(f"http://127.0.0.1:{port}", token)
        started = time.perf_counter()
        client.models.publish(module, name="bench-mlp", signature=signature,
                              create={"visibility": "private"})
        published = time.perf_counter() - started
        started = time.perf_counter()
        first = client.models.load("bench-mlp")  # cold: downloads and checks the SHA-256
        cold = time.perf_counter() - started
        info, paths = client.models.files("bench-mlp")
        path = paths["weights"]
        assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                      module.state_dict().values(), strict=True))
        del first

        state = load_file(str(path))
        assert all(torch.equal(a, state[k]) for k, a in module.state_dict().items())
        del state

        def through_client() -> None:
            client.models.load("bench-mlp")

        def direct() -> None:
            built = nn.build(info["architecture"], info["config"])
            built.load_state_dict(load_file(str(path)))
            built.eval()

        def client_parts() -> None:
            # What Models.files does, timed in two parts: the API request, then the
            # cache check (marker file names the SHA-256 and the size matches; no re-hash).
            started = time.perf_counter()
            record = client.models.version("bench-mlp")
            timings["metadata"].append(time.perf_counter() - started)
            folder = cache_dir() / "models" / "bench-mlp" / f"v{record['number']}"
            started = time.perf_counter()
            for entry in record["files"]:
                client.models._cached("bench-mlp", record["number"], entry, folder)
            timings["cache check"].append(time.perf_counter() - started)

        def direct_parts() -> None:
            started = time.perf_counter()
            built = nn.build(info["architecture"], info["config"])
            timings["build"].append(time.perf_counter() - started)
            started = time.perf_counter()
            built.load_state_dict(load_file(str(path)))
            timings["fill"].append(time.perf_counter() - started)

        def floor() -> None:
            # No random initialisation: parameters on the meta device, then the
            # file's tensors assigned in place of them.
            with torch.device("meta"):
                built = nn.build(info["architecture"], info["config"])
            built.load_state_dict(load_file(str(path)), assign=True)
            built.eval()

        timings: dict[str, list[float]] = {name: [] for name in (
            "client", "direct", "floor", "metadata", "cache check", "build", "fill")}
        for _ in range(repeats):  # interleaved, so drifting load hits both alike
            for name, run in (("direct", direct), ("client", through_client),
                              ("floor", floor)):
                started = time.perf_counter()
                run()
                timings[name].append(time.perf_counter() - started)
            client_parts()
            direct_parts()

    def ms(name: str) -> str:
        return f"{statistics.median(timings[name]) * 1000:.0f} ms"

    size_mb = path.stat().st_size / 1e6
    client_s = statistics.median(timings["client"])
    direct_s = statistics.median(timings["direct"])
    print(f"model: mlp {config['hidden']}, {parameters / 1e6:.1f} M parameters, "
          f"{size_mb:.0f} MB safetensors")
    print(f"publish through the client (upload, checks, dry run): {published:.2f} s; "
          f"first load (download, SHA-256): {cold:.2f} s")
    print(f"warm load, median (best) of {repeats}: client {client_s * 1000:.0f} ms "
          f"({min(timings['client']) * 1000:.0f} ms), direct torch {direct_s * 1000:.0f} ms "
          f"({min(timings['direct']) * 1000:.0f} ms)")
    print(f"  client extras: metadata request {ms('metadata')}, cache check "
          f"{ms('cache check')} (marker and size, no re-hash)")
    print(f"  direct: nn.build {ms('build')} (random initialisation), load_file + "
          f"load_state_dict {ms('fill')}")
    print(f"  floor, no random initialisation (meta device, assign=True): {ms('floor')}")
    ratio = client_s / direct_s
    best_ratio = min(timings["client"]) / min(timings["direct"])
    print(f"load ratio (client / direct): {ratio:.2f} median, {best_ratio:.2f} best  "
          f"(target <= 1.5: {'PASS' if ratio <= 1.5 else 'FAIL'})")

if __name__ == "__main__":
    sys.exit(main())
