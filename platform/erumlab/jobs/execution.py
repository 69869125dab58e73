"""Run one parameterised notebook with papermill, watched.

Free of Django: the caller passes an observer that hears about each cell and
says whether to stop (cancellation). A watcher thread enforces the wall-time
limit, samples the kernel's memory and kills the kernel when the job must
end early; papermill then stops and still writes the output notebook.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import nbformat
import papermill
import psutil
from nbclient.exceptions import DeadKernelError
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.exceptions import PapermillExecutionError

ENGINE_NAME = "erumlab"
# What a kernel may see of the worker's environment: nothing secret.
KERNEL_ENV_ALLOWED = (
    "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "TMPDIR",
    "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SSL_CERT_FILE",
)


def base_kernel_env(home: Path) -> dict[str, str]:
    """The allowed part of this process's environment, this Python first on PATH, HOME set."""
    import os
    import sys

    env = {name: os.environ[name] for name in KERNEL_ENV_ALLOWED if name in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), PYTHONUNBUFFERED="1")
    return env


class Observer(Protocol):
    def cell_started(self, index: int, total: int, description: str) -> None: ...

    def cell_finished(self, index: int, total: int) -> None: ...

    def stream(self, text: str) -> None:
        """Text the kernel printed (stdout/stderr), as it arrives."""

    def stop_reason(self) -> str | None:
        """A reason to stop now (e.g. the user cancelled), polled about once a second."""

    def close(self) -> None:
        """Called from the watcher thread as it ends (release what it opened)."""


@dataclass
class RunResult:
    outcome: str  # "succeeded", "failed", "cancelled", "timeout"
    wall_seconds: float
    peak_memory_bytes: int
    error: dict[str, Any] | None = None
    message: str = ""


@dataclass
class _Watch:
    observer: Observer
    deadline: float
    poll_seconds: float = 1.0
    kernel_pid: int | None = None
    peak_memory: int = 0
    stop: str | None = None  # why the kernel was killed
    done: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        if self.kernel_pid is None:
            return
        try:
            root = psutil.Process(self.kernel_pid)
            processes = [root, *root.children(recursive=True)]
            total = 0
            for process in processes:
                with contextlib.suppress(psutil.Error):
                    total += process.memory_info().rss
            self.peak_memory = max(self.peak_memory, total)
        except psutil.Error:
            pass

    def kill_kernel(self, reason: str) -> None:
        self.stop = reason
        if self.kernel_pid is None:
            return
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.kernel_pid)
            for process in [*root.children(recursive=True), root]:
                with contextlib.suppress(psutil.Error):
                    process.send_signal(signal.SIGKILL)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.observer.close()

    def _run(self) -> None:
        last_poll = 0.0
        while not self.done.wait(0.25):
            self.sample()
            now = time.monotonic()
            if now > self.deadline:
                self.kill_kernel("timeout")
                return
            if now - last_poll >= self.poll_seconds:
                last_poll = now
                reason = self.observer.stop_reason()
                if reason:
                    self.kill_kernel(reason)
                    return


class _Manager(NotebookExecutionManager):
    """Papermill's execution manager, reporting every cell to the observer."""

    watch: _Watch

    def cell_start(self, cell, cell_index=None, **kwargs):  # noqa: ANN001, ANN201
        super().cell_start(cell, cell_index, **kwargs)
        source = (cell.get("source") or "").strip().splitlines()
        self.watch.observer.cell_started(
            cell_index or 0, len(self.nb.cells), source[0][:120] if source else ""
        )

    def cell_complete(self, cell, cell_index=None, **kwargs):  # noqa: ANN001, ANN201
        super().cell_complete(cell, cell_index, **kwargs)
        self.watch.observer.cell_finished(cell_index or 0, len(self.nb.cells))


class ErumlabEngine(NBClientEngine):
    """nbclient engine with per-cell reporting and a kernel started in the job's folder."""

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=False,  # noqa: ANN001, ANN206
                         log_output=False, autosave_cell_every=30, *, watch: _Watch,
                         kernel_env: dict[str, str], kernel_cwd: str, **kwargs):
        manager = _Manager(nb, output_path=output_path, progress_bar=False,
                           log_output=log_output, autosave_cell_every=autosave_cell_every)
        manager.watch = watch
        manager.notebook_start()
        try:
            client_kwargs = {"env": kernel_env, "cwd": kernel_cwd}
            cls._execute(manager, kernel_name, client_kwargs, log_output=log_output, **kwargs)
        finally:
            manager.cleanup_pbar()
            manager.notebook_complete()
        return manager.nb

    @classmethod
    def _execute(cls, manager, kernel_name, client_kwargs, **kwargs):  # noqa: ANN001, ANN206
        from papermill.clientwrap import PapermillNotebookClient

        class _Client(PapermillNotebookClient):
            # nbclient binds its sync start_new_kernel to the async one at class
            # creation: override the sync entry point papermill goes through.
            def start_new_kernel(self, **start_kwargs):  # noqa: ANN003, ANN202
                super().start_new_kernel(**start_kwargs)
                provisioner = getattr(self.km, "provisioner", None)
                manager.watch.kernel_pid = getattr(provisioner, "pid", None)

            def output(self, outs, msg, display_id, cell_index):  # noqa: ANN001, ANN202
                # Each output message as it arrives: the log grows during long cells.
                if msg.get("msg_type") == "stream":
                    manager.watch.observer.stream(msg.get("content", {}).get("text", ""))
                return super().output(outs, msg, display_id, cell_index)

        client = _Client(
            manager, kernel_name=kernel_name, startup_timeout=kwargs.get("start_timeout", 60),
            timeout=None, log_output=False, allow_errors=kwargs.get("allow_errors", False),
        )
        return client.execute(**client_kwargs)


papermill_engines.register(ENGINE_NAME, ErumlabEngine)


def render_html(notebook: nbformat.NotebookNode) -> str:
    """A notebook as one self-contained HTML page (JupyterLab's look, images embedded)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(notebook)
    return body


def run_notebook(*, notebook: nbformat.NotebookNode, parameters: dict[str, Any], workdir: Path,
                 output_path: Path, kernel_env: dict[str, str], observer: Observer,
                 wall_time_limit: float, kernel_name: str = "python3",
                 allow_errors: bool = False) -> RunResult:
    """Execute ``notebook`` with ``parameters`` in ``workdir``; the output goes to ``output_path``.

    ``kernel_env`` is the kernel's whole environment (nothing is inherited, so
    the worker's secrets stay out of user code).

    ``allow_errors``: run every cell even after one fails (grading: each test
    cell counts on its own); the outcome is then "succeeded" once all cells
    ran, and the errors stay in the cells' outputs. No parameters are injected.

    Never raises for what the notebook does: a failing cell, a cancellation and
    the wall-time limit all come back as a RunResult, with the output notebook
    written.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    input_path = workdir.parent / "input.ipynb"
    nbformat.write(notebook, input_path)
    watch = _Watch(observer=observer, deadline=time.monotonic() + wall_time_limit)
    watcher = threading.Thread(target=watch.run, name="job-watch", daemon=True)
    started = time.monotonic()
    watcher.start()
    error = None
    try:
        if allow_errors:
            _run_all_cells(notebook, output_path, kernel_name=kernel_name, watch=watch,
                           kernel_env=kernel_env, kernel_cwd=str(workdir))
        else:
            papermill.execute_notebook(
                str(input_path), str(output_path), parameters=parameters,
                engine_name=ENGINE_NAME, kernel_name=kernel_name, progress_bar=False,
                watch=watch, kernel_env=kernel_env, kernel_cwd=str(workdir),
            )
        outcome = "succeeded"
    except PapermillExecutionError as exc:
        outcome = "failed"
        error = {
            "cell_index": exc.cell_index,
            "execution_count": exc.exec_count,
            "ename": exc.ename,
            "evalue": exc.evalue,
            "traceback": _strip_ansi("\n".join(exc.traceback)),
            "source": exc.source,
        }
    except (DeadKernelError, RuntimeError) as exc:
        if watch.stop is None:
            outcome = "failed"
            error = {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}
        else:
            outcome = watch.stop
    finally:
        watch.done.set()
        watcher.join(timeout=5)
    if watch.stop and outcome != "succeeded":
        outcome = watch.stop
    wall = time.monotonic() - started
    message = {
        "succeeded": "",
        "failed": _failure_message(error),
        "cancelled": "Cancelled by request; the kernel was stopped.",
        "timeout": f"Stopped at the wall-time limit of {wall_time_limit:.0f} s.",
    }.get(outcome, outcome)
    return RunResult(outcome=outcome, wall_seconds=wall, peak_memory_bytes=watch.peak_memory,
                     error=error, message=message)


def _run_all_cells(notebook: nbformat.NotebookNode, output_path: Path, *, kernel_name: str,
                   watch: _Watch, kernel_env: dict[str, str], kernel_cwd: str) -> None:
    """Every cell, errors or not, through the same engine (papermill would stop at the first)."""
    notebook = nbformat.from_dict(notebook)
    notebook.metadata.setdefault("papermill", {})
    try:
        executed = ErumlabEngine.execute_notebook(
            notebook, kernel_name, output_path=str(output_path), watch=watch,
            kernel_env=kernel_env, kernel_cwd=kernel_cwd, allow_errors=True)
    finally:
        if not output_path.exists():  # the manager saves as it goes; make sure there is one
            nbformat.write(notebook, output_path)
    nbformat.write(executed, output_path)


def _failure_message(error: dict[str, Any] | None) -> str:
    if not error:
        return "The notebook failed."
    where = f" in cell {error['execution_count']}" if error.get("execution_count") else ""
    return f"{error.get('ename', 'Error')}{where}: {error.get('evalue', '')}"[:1000]


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
