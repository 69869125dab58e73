"""Batch jobs: platform overhead over plain papermill, and throughput with 2 worker processes.

    .venv/bin/python bench/jobs_overhead.py [--jobs 20] [--sleep 1.0]

Prints ratios measured side by side in one run (absolute seconds are printed
too, but only the ratios are meaningful across machines):

- overhead: wall time for N jobs through the platform (submit -> Celery ->
  claim -> papermill -> outputs recorded), one worker process, divided by the
  wall time of N sequential plain `papermill.execute_notebook` runs of the same
  notebook. Target: <= 1.25 for a 1-second notebook.
- throughput: jobs per minute with 2 worker processes, and its ratio to 1.

Runs on embedded defaults (temporary SQLite and Redis) unless DATABASE_URL /
REDIS_URL are set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchenv import bench_platform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds the notebook sleeps")
    args = parser.parse_args()
    with bench_platform(ERUMLAB_JOB_MAX_RUNNING_PER_USER="8"):
        run(args)


def run(args: argparse.Namespace) -> None:
    import nbformat
    import papermill
    from nbformat.v4 import new_code_cell, new_notebook

    from erumlab.accounts.models import User
    from erumlab.cli import worker_argv
    from erumlab.jobs import services
    from erumlab.jobs.models import Job, Template
    from erumlab.testing.processes import running

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = new_code_cell("seconds: float = 1.0  # how long to work")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell("import time\ntime.sleep(seconds)\nprint('done')")]
    content = nbformat.writes(nb)
    workdir = Path(tempfile.mkdtemp(prefix="erumlab-bench-pm-"))
    source = workdir / "input.ipynb"
    source.write_text(content)

    def plain(n: int) -> float:
        started = time.perf_counter()
        for i in range(n):
            papermill.execute_notebook(str(source), str(workdir / f"out-{i}.ipynb"),
                                       parameters={"seconds": args.sleep},
                                       kernel_name="python3", progress_bar=False,
                                       cwd=str(workdir))
        return time.perf_counter() - started

    user = User.objects.create_user(username="bench", email="bench@example.org")
    template = services.template_save(content=content, slug="sleep",
                                      source=Template.Source.UPLOADED, owner=user)

    def through_platform(n: int, concurrency: int) -> tuple[float, list[float]]:
        log = Path(os.environ["ERUMLAB_DATA_DIR"]) / f"worker-{concurrency}.log"
        with running(worker_argv(queues="default", concurrency=str(concurrency)),
                     env=dict(os.environ), log=log):
            # Warm-up: worker start and first imports are not per-job costs.
            warm = [services.job_submit(owner=user, template=template,
                                        parameters={"seconds": 0.0})
                    for _ in range(concurrency)]
            _wait(Job, [j.pk for j in warm])
            started = time.perf_counter()
            jobs = [services.job_submit(owner=user, template=template,
                                        parameters={"seconds": args.sleep}) for _ in range(n)]
            _wait(Job, [j.pk for j in jobs])
            elapsed = time.perf_counter() - started
        done = Job.objects.filter(pk__in=[j.pk for j in jobs])
        assert all(j.state == Job.State.SUCCEEDED for j in done), [j.message for j in done]
        latencies = [(j.finished_at - j.started_at).total_seconds() for j in done]
        return elapsed, latencies

    # Side by side, plain first and again last, so drift on a shared machine shows.
    plain_before = plain(args.jobs)
    platform_1, per_job = through_platform(args.jobs, 1)
    platform_2, _ = through_platform(args.jobs, 2)
    plain_after = plain(args.jobs)
    plain_time = min(plain_before, plain_after)

    print(f"notebook: sleeps {args.sleep} s; {args.jobs} jobs; "
          f"database {_vendor()}; redis {'REDIS_URL' if os.environ.get('REDIS_URL') else 'embedded'}")
    print(f"plain papermill, sequential:   {plain_before:7.2f} s / {plain_after:7.2f} s "
          f"(before / after)  -> {plain_time / args.jobs:.2f} s per notebook")
    print(f"platform, 1 worker process:    {platform_1:7.2f} s  -> "
          f"{platform_1 / args.jobs:.2f} s per job (median run {statistics.median(per_job):.2f} s)")
    print(f"platform, 2 worker processes:  {platform_2:7.2f} s")
    print(f"overhead ratio (platform / plain papermill): {platform_1 / plain_time:.3f}  "
          f"(target <= 1.25)")
    print(f"throughput: {60 * args.jobs / platform_1:.1f} jobs/min with 1 process, "
          f"{60 * args.jobs / platform_2:.1f} jobs/min with 2; ratio {platform_1 / platform_2:.2f}")


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


def _wait(Job, ids, timeout: float = 900) -> None:  # noqa: ANN001, N803
    deadline = time.monotonic() + timeout
    while Job.objects.filter(pk__in=ids).exclude(state__in=Job.TERMINAL).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("jobs did not finish")
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
