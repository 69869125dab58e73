"""One GPU allocator for both spawners: which server holds which device.

Why SQLite: allocations must outlive the hub (a restarted hub must not hand a
GPU that a running server still holds to a second user), and they must be
atomic across threads and processes (two hubs, or a hub and an admin command,
on one machine). A SQLite file in the hub's folder gives both with the
standard library: each allocation runs in a ``BEGIN IMMEDIATE`` transaction,
which takes the file's write lock before reading, so no two writers ever see
the same free slot; the primary key (device, slot) rejects a double hand-out
even if the logic were wrong. Waiting writers retry for ``timeout`` seconds.

Sharing rule: a profile may let N servers time-slice one device (``share=N``;
1 means a device of its own). A device is either free, held by exactly one
exclusive server, or shared by fewer than N+1 servers that all asked for the
same N. Exclusive and shared use never mix on a device, nor do different N,
so "a GPU of your own" stays one and a "4 per GPU" session never has 5
neighbours. Shared sessions are packed onto partly used devices first, which
keeps whole devices free for exclusive profiles; ties go to the configured
order of the devices.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# An index ("0"), a UUID ("GPU-8f3c…"), or a MIG device ("MIG-…", "0:1", "MIG-GPU-…/1/0").
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
_SCHEMA = """CREATE TABLE IF NOT EXISTS gpu_allocation (
    device TEXT NOT NULL, slot INTEGER NOT NULL, owner TEXT NOT NULL,
    profile TEXT NOT NULL DEFAULT '', share INTEGER NOT NULL CHECK (share >= 1),
    created_at TEXT NOT NULL, PRIMARY KEY (device, slot), UNIQUE (device, owner));
CREATE INDEX IF NOT EXISTS gpu_allocation_owner ON gpu_allocation (owner);"""


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class AllGpusBusy(RuntimeError):
    """Too few devices free for a request; the message is written for the person starting."""

    def __init__(self, *, total: int, free: int, requested: int, sessions: int = 0) -> None:
        self.total, self.free, self.requested, self.sessions = total, free, requested, sessions
        if total == 0:
            message = "This site has no GPUs; start a CPU session."
        elif requested > total:
            message = (f"This profile needs {_count(requested, 'GPU')} but the site has only "
                       f"{total}; choose a smaller profile or start a CPU session.")
        elif free == 0:
            held = f"{_count(sessions, 'session')} {'holds' if sessions == 1 else 'hold'}"
            what = "The only GPU is" if total == 1 else f"All {total} GPUs are"
            message = (f"{what} busy ({held} {'it' if total == 1 else 'them'}); wait for one "
                       f"to free up or start a CPU session.")
        else:
            message = (f"Only {free} of {total} GPUs {'is' if free == 1 else 'are'} free for this "
                       f"profile, which needs {requested}; wait for more to free up or start "
                       f"a CPU session.")
        super().__init__(message)


@dataclass(frozen=True)
class Device:
    id: str  # what CUDA_VISIBLE_DEVICES and Docker's DeviceIDs take: an index or a UUID
    name: str = ""
    memory_mb: int | None = None
    uuid: str | None = None


def discover_devices(configured: str | None = None, *, timeout: float = 10.0) -> list[Device]:
    """The administrator's list if given ("0,1", UUIDs, "none"), else what the driver reports.

    A configured list is taken as is (the administrator may keep devices for
    other work); a bad one raises ValueError rather than silently shrinking
    the site. Without one, a machine whose driver does not answer has no GPUs.
    """
    if configured is not None and configured.strip():
        if configured.strip().lower() == "none":
            return []
        ids = [item.strip() for item in configured.split(",")]
        for item in ids:
            if not item:
                raise ValueError(f"GPU list {configured!r}: an empty device id (a stray comma?)")
            if not _DEVICE_ID.fullmatch(item):
                raise ValueError(f"GPU list {configured!r}: {item!r} is not a device id (expected "
                                 f"comma-separated indices such as 0,1 or UUIDs such as GPU-…)")
        duplicates = sorted({item for item in ids if ids.count(item) > 1})
        if duplicates:
            raise ValueError(f"GPU list {configured!r}: {', '.join(duplicates)} named twice")
        return [Device(item) for item in ids]
    return _from_nvidia_smi(timeout) or _from_nvml()


def _from_nvidia_smi(timeout: float) -> list[Device]:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        result = subprocess.run([binary, "--query-gpu=index,uuid,name,memory.total",
                                 "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=timeout, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("nvidia-smi failed, so no GPUs from it: %s", error)
        return []
    devices = []
    for line in result.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 4 or not fields[0].isdigit():
            continue  # a warning or a banner, not a device
        memory = fields[-1]  # "[N/A]" on some boards; a name may itself hold a comma
        devices.append(Device(fields[0], name=", ".join(fields[2:-1]), uuid=fields[1] or None,
                              memory_mb=int(memory) if memory.isdigit() else None))
    return devices


def _from_nvml() -> list[Device]:
    """The same through NVML, for images that carry the driver's library but not nvidia-smi."""
    try:
        import pynvml  # optional: nvidia-ml-py
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # pynvml.NVMLError and kin: no driver, so no GPUs
        return []
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name, uuid = pynvml.nvmlDeviceGetName(handle), pynvml.nvmlDeviceGetUUID(handle)
            devices.append(Device(
                str(index), name=name.decode() if isinstance(name, bytes) else name,
                uuid=uuid.decode() if isinstance(uuid, bytes) else uuid,
                memory_mb=pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20))
        return devices
    except Exception as error:  # pynvml.NVMLError and kin
        log.warning("NVML failed, so no GPUs from it: %s", error)
        return []
    finally:
        pynvml.nvmlShutdown()


class GpuAllocator:
    """Allocations of ``devices`` kept in the SQLite file ``path``; safe across processes."""

    def __init__(self, path: Path, devices: list[str], *, timeout: float = 30.0) -> None:
        if len(set(devices)) != len(devices) or not all(devices):
            raise ValueError(f"GPU devices {devices!r}: ids must be non-empty and distinct")
        self.path, self.devices, self.timeout = Path(path), tuple(devices), timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            for statement in _SCHEMA.split(";\n"):
                db.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the file's lock from its first read to commit."""
        # isolation_level=None: Python issues no BEGIN of its own; the timeout is SQLite's busy wait.
        with closing(sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)) as db:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise RuntimeError(f"GPU allocations in {self.path}: {error} (another hub process "
                                   f"held the file for over {self.timeout:g} s)") from error
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite itself rolls back after some errors
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _query(self, sql: str, *args: Any) -> list[tuple]:
        with closing(sqlite3.connect(self.path, timeout=self.timeout)) as db:
            return db.execute(sql, args).fetchall()

    def allocate(self, owner: str, count: int, *, share: int = 1, profile: str = "") -> list[str]:
        """``count`` distinct devices for ``owner``, or the same ones again if it holds them.

        Returning an owner's allocation again makes a retried spawn safe (no leak).
        An allocation of another shape (count, share, or a device no longer
        configured) is left over from an earlier start of the same server, and is
        replaced. Raises AllGpusBusy when too few devices are free.
        """
        if count < 0 or share < 1:
            raise ValueError(f"GPU request of {count} with share {share}: "
                             f"count must be at least 0 and share at least 1")
        if not owner:
            raise ValueError("GPU request without an owner")
        if count == 0:
            return []
        with self._transaction() as db:
            rows = db.execute("SELECT device, slot, owner, share FROM gpu_allocation").fetchall()
            held = [(d, s) for d, _, o, s in rows if o == owner]
            if len(held) == count and all(d in self.devices and s == share for d, s in held):
                return self._ordered(d for d, _ in held)
            if held:
                db.execute("DELETE FROM gpu_allocation WHERE owner = ?", (owner,))
                rows = [row for row in rows if row[2] != owner]
            slots: dict[str, dict[int, int]] = {device: {} for device in self.devices}
            for device, slot, _, device_share in rows:
                if device in slots:  # allocations on removed devices do not count
                    slots[device][slot] = device_share
            usable = [d for d in self.devices if not slots[d] or (
                share > 1 and len(slots[d]) < share and set(slots[d].values()) == {share})]
            if len(usable) < count:
                raise AllGpusBusy(total=len(self.devices), free=len(usable), requested=count,
                                  sessions=len({o for d, _, o, _ in rows if d in slots}))
            # Fullest compatible device first (packing), then the configured order.
            chosen = sorted(usable, key=lambda d: -len(slots[d]))[:count]
            now = datetime.now(UTC).isoformat(timespec="seconds")
            db.executemany(
                "INSERT INTO gpu_allocation (device, slot, owner, profile, share, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(d, min(set(range(share)) - set(slots[d])), owner, profile, share, now)
                 for d in chosen])
            return self._ordered(chosen)

    def _ordered(self, devices: Iterable[str]) -> list[str]:
        """Configured order (what an administrator reads), unknown devices last."""
        return sorted(devices, key=lambda d: (d not in self.devices,
                                              self.devices.index(d) if d in self.devices else 0, d))

    def release(self, owner: str) -> list[str]:
        """Free what ``owner`` holds; returns those devices (none the second time)."""
        with self._transaction() as db:
            released = [d for (d,) in db.execute(
                "SELECT device FROM gpu_allocation WHERE owner = ?", (owner,))]
            db.execute("DELETE FROM gpu_allocation WHERE owner = ?", (owner,))
        return self._ordered(released)

    def held_by(self, owner: str) -> list[str]:
        return self._ordered(
            [d for (d,) in self._query("SELECT device FROM gpu_allocation WHERE owner = ?", owner)])

    def occupancy(self) -> list[dict[str, Any]]:
        """Per device, for an admin view: its owners (oldest first) and their share (None if free).

        Devices no longer configured that still hold allocations come last, with
        ``configured`` False, until ``reconcile`` releases them.
        """
        holders: dict[str, list[tuple[str, int]]] = {device: [] for device in self.devices}
        for device, owner, share in self._query(
                "SELECT device, owner, share FROM gpu_allocation ORDER BY created_at, rowid"):
            holders.setdefault(device, []).append((owner, share))
        return [{"id": device, "allocations": [o for o, _ in rows],
                 "share": max((s for _, s in rows), default=None),
                 "configured": device in self.devices}
                for device, rows in holders.items()]

    def reconcile(self, active_owners: set[str]) -> list[str]:
        """Release allocations of servers not running, and on devices no longer configured.

        Meant for hub start-up (after a crash no stop ran); returns the owners
        that lost an allocation.
        """
        with self._transaction() as db:
            stale = [(d, o) for d, o in db.execute("SELECT device, owner FROM gpu_allocation")
                     if o not in active_owners or d not in self.devices]
            db.executemany("DELETE FROM gpu_allocation WHERE device = ? AND owner = ?", stale)
        return sorted({owner for _, owner in stale})
