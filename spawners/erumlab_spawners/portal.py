"""What both erumlab spawners do around a start: ask the portal, allocate GPUs, clean up.

Before a server starts, the portal decides (profile open to the user, quota)
and issues the API token that the server's erumlab.client uses; the hub then
allocates GPUs from the one allocator (erumlab_spawners.gpus) and reports
them. When the server stops, or its start fails, the GPUs are released and
the portal revokes the token. Each subclass applies a profile its own way
(``apply_profile``): environment and limits for local processes, device
requests and container limits for Docker.
"""

from __future__ import annotations

import asyncio
import html
from pathlib import Path
from typing import Any

import requests
from tornado import web
from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from erumlab_spawners.gpus import AllGpusBusy, GpuAllocator, discover_devices

_ALLOCATORS: dict[tuple[str, tuple[str, ...]], GpuAllocator] = {}


def shared_allocator(state_file: str, devices: str) -> GpuAllocator:
    """One allocator per state file and device list in this hub process."""
    ids = tuple(device.id for device in discover_devices(devices or None)) \
        if devices.strip().lower() != "none" else ()
    key = (state_file, ids)
    if key not in _ALLOCATORS:
        Path(state_file).parent.mkdir(parents=True, exist_ok=True)
        _ALLOCATORS[key] = GpuAllocator(Path(state_file), list(ids))
    return _ALLOCATORS[key]


class PortalSessionMixin(LoggingConfigurable):
    """Mixed into a JupyterHub Spawner, before it in the bases (a Configurable, so that
    its traits are configured like the spawner's own)."""

    portal_api_url = Unicode(
        "", config=True, help="The portal's API as the hub reaches it, e.g. http://web:8000/api/v1.")
    portal_token = Unicode("", config=True, help="The hub's service token (shared with the portal).")
    portal_timeout = Float(10.0, config=True, help="Seconds to wait for the portal.")
    gpu_devices = Unicode(
        "", config=True,
        help='GPUs to allocate: "0,1,2,3" (indices or UUIDs), "none", or empty to ask nvidia-smi.')
    gpu_state_file = Unicode("", config=True, help="SQLite file that keeps GPU allocations.")

    # Set during a start; kept in the hub's state so that a restarted hub still knows.
    erumlab_profile: dict[str, Any] | None = None
    gpu_ids: list[str] | None = None

    # --- talking to the portal ---------------------------------------------------------

    def _portal_call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.portal_api_url.rstrip('/')}/{path}",
                                headers={"Authorization": f"token {self.portal_token}"},
                                timeout=self.portal_timeout, **kwargs)

    async def _portal(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return await asyncio.to_thread(self._portal_call, method, path, **kwargs)
        except requests.RequestException as error:
            raise web.HTTPError(503, f"The erumlab portal is not reachable: {error}") from error

    @property
    def _owner(self) -> str:
        return f"{self.user.name}/{self.name}"

    def _event(self, progress: int, message: str) -> None:
        self._erumlab_events.append({"progress": progress, "message": message})

    # --- the start form (when a user starts from the hub itself) -----------------------

    async def _profiles(self) -> list[dict[str, Any]]:
        response = await self._portal("GET", f"hub/profiles/{self.user.name}/")
        if response.status_code != 200:
            return []
        return response.json()

    async def erumlab_options_form(self, spawner: Any = None) -> str:
        profiles = await self._profiles()
        if len(profiles) <= 1:
            return ""  # nothing to choose: start right away
        choices = "".join(
            f'<label style="display:block;margin:.5em 0"><input type="radio" name="profile" '
            f'value="{html.escape(p["slug"])}"{" checked" if i == 0 else ""}> '
            f'<strong>{html.escape(p["name"])}</strong> {html.escape(p.get("description", ""))}'
            f"</label>"
            for i, p in enumerate(profiles))
        return f"<fieldset><legend>Profile</legend>{choices}</fieldset>"

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        return {"profile": (formdata.get("profile") or [""])[0]}

    # --- start, stop, state ------------------------------------------------------------

    def apply_profile(self, profile: dict[str, Any], gpu_ids: list[str]) -> None:
        """Subclasses turn the profile into limits and device access."""
        self.cpu_limit = float(profile["cpus"])
        self.mem_limit = int(float(profile["memory_gb"]) * 1024 ** 3)

    async def prepare_start(self) -> None:
        """Subclasses' last step before the server starts (the portal has said yes)."""

    def get_args(self) -> list[str]:
        args = list(super().get_args())  # a copy: the parent may hand out its own list
        # Busy kernels count as activity, so the idle culler spares a server at work.
        args.append("--ServerApp.jpserver_extensions=erumlab.serverext=True")
        return args

    async def start(self) -> Any:
        self._erumlab_events = []
        self._event(10, "Checking your profile and quota with the portal")
        profile_slug = (self.user_options or {}).get("profile", "")
        response = await self._portal("POST", "hub/sessions/authorize/", json={
            "user": self.user.name, "server": self.name, "profile": profile_slug})
        if response.status_code == 403:
            raise web.HTTPError(403, response.json().get("detail", "Not allowed."))
        if response.status_code != 200:
            raise web.HTTPError(502, f"The portal answered {response.status_code} when asked "
                                     f"to authorize this server: {response.text[:200]}")
        granted = response.json()
        profile = granted["profile"]
        self.erumlab_profile = profile
        self._erumlab_env = {"ERUMLAB_URL": granted["portal_url"],
                             "ERUMLAB_API_TOKEN": granted["api_token"]}
        try:
            self.gpu_ids = self._allocate(profile)
            if self.gpu_ids:
                self._event(30, f"GPU{'s' if len(self.gpu_ids) > 1 else ''} "
                                f"{', '.join(self.gpu_ids)} allocated")
            await self._portal("POST", "hub/sessions/started/", json={
                "user": self.user.name, "server": self.name, "gpus": self.gpu_ids})
            self.apply_profile(profile, self.gpu_ids)
            await self.prepare_start()
            self._event(50, f"Starting JupyterLab ({profile['name']})")
            return await super().start()
        except BaseException as error:
            await self._release(reason=f"start failed: {error}"[:200])
            raise

    def _allocate(self, profile: dict[str, Any]) -> list[str]:
        count = int(profile.get("gpus", 0))
        if not count:
            return []
        allocator = shared_allocator(self.gpu_state_file, self.gpu_devices)
        try:
            return allocator.allocate(self._owner, count, share=int(profile.get("gpu_share", 1)))
        except AllGpusBusy as busy:
            raise web.HTTPError(409, str(busy)) from busy

    async def _release(self, *, reason: str) -> None:
        if self.gpu_state_file:
            shared_allocator(self.gpu_state_file, self.gpu_devices).release(self._owner)
        self.gpu_ids = []
        try:
            await self._portal("POST", "hub/sessions/ended/", json={
                "user": self.user.name, "server": self.name, "reason": reason})
        except web.HTTPError as error:  # the token expires with the portal's own clean-up
            self.log.warning("could not tell the portal that %s ended: %s", self._owner, error)

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            await self._release(reason="stopped")

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env.update(getattr(self, "_erumlab_env", {}))
        # A GPU session sees exactly its GPUs; a CPU session sees none.
        env["CUDA_VISIBLE_DEVICES"] = self.cuda_visible_devices()
        return env

    def cuda_visible_devices(self) -> str:
        """The allocated devices as the server's processes name them (host ids here)."""
        return ",".join(self.gpu_ids or [])

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.gpu_ids is not None:
            state["erumlab_gpus"] = self.gpu_ids
        if self.erumlab_profile:
            state["erumlab_profile"] = self.erumlab_profile
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.gpu_ids = state.get("erumlab_gpus")
        self.erumlab_profile = state.get("erumlab_profile")

    def clear_state(self) -> None:
        super().clear_state()
        self.gpu_ids = None
        self.erumlab_profile = None

    async def progress(self) -> Any:
        """Replays this start's events to each reader, then follows until it ends."""
        sent = 0
        while True:
            events = getattr(self, "_erumlab_events", [])
            while sent < len(events):
                yield events[sent]
                sent += 1
            if not self._spawn_pending:
                return
            await asyncio.sleep(0.25)
