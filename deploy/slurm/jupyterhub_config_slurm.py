"""JupyterHub for erumlab on an HPC cluster: each user's server is a Slurm job.

The hub runs on a service or login node that can submit jobs (sbatch, squeue,
scancel) and that the compute nodes can reach. Start it with

    jupyterhub -f deploy/slurm/jupyterhub_config_slurm.py

This file loads the hub's own configuration first (spawners/jupyterhub_config.py:
sign-in through the portal, the erumlab-portal service token and role, the
idle culler, everything read from the same ERUMLAB_* variables) and then
swaps the spawner for batchspawner's SlurmSpawner, behind the same portal
checks as the local and Docker spawners: before a job is submitted the portal
decides (profile open to the user, quota) and issues the server's API token.
The granted profile becomes the job's request: its cores, its memory, and for
GPU profiles the GPU partition and ``--gres=gpu:<n>`` (Slurm assigns the GPUs).

Cluster accounts: batchspawner submits as the user (``sudo -E -u <user> sbatch``),
so portal user names must be the cluster's login names, and the hub's account
needs sudo rights for sbatch, squeue and scancel as those users. The compute
nodes need an environment with jupyterhub (the hub's major version),
batchspawner, jupyterlab and erumlab (ERUMLAB_SLURM_PROLOGUE activates it).

Settings (besides those of spawners/jupyterhub_config.py; leave
ERUMLAB_HUB_SPAWNER unset):

    ERUMLAB_SLURM_CPU_PARTITION   partition for CPU profiles (default: cpu)
    ERUMLAB_SLURM_GPU_PARTITION   partition for GPU profiles (default: gpu)
    ERUMLAB_SLURM_GPU_GRES        GRES of one GPU, "{gpus}" the count (default: gpu:{gpus})
    ERUMLAB_SLURM_RUNTIME         wall time of a server (default: 08:00:00)
    ERUMLAB_SLURM_ACCOUNT         Slurm account to charge (default: none)
    ERUMLAB_SLURM_QOS             Slurm QOS (default: none)
    ERUMLAB_SLURM_OPTIONS         further sbatch options, on one #SBATCH line
    ERUMLAB_SLURM_PROLOGUE        shell lines run in the job before the server
    ERUMLAB_SLURM_START_TIMEOUT   seconds a job may wait in the queue (default: 600)
    ERUMLAB_HUB_HUB_IP            where the hub API listens (default here: 0.0.0.0,
                                  the compute nodes call it)
    ERUMLAB_HUB_CONNECT_IP        how the compute nodes reach the hub (default:
                                  this host's name)
    ERUMLAB_HUB_BASE_CONFIG       the hub configuration loaded first (default:
                                  spawners/jupyterhub_config.py of this checkout)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchspawner import SlurmSpawner
from traitlets import Unicode, default

from erumlab_spawners.portal import PortalSessionMixin
from erumlab_spawners.settings import HubConfigError, env_int, env_url, env_value

c = get_config()  # noqa: F821 (provided by JupyterHub)

# --- the hub as on a single machine: login through the portal, service token ----------
base_config = Path(env_value(
    "ERUMLAB_HUB_BASE_CONFIG",
    str(Path(__file__).resolve().parents[2] / "spawners" / "jupyterhub_config.py")))
if not base_config.is_file():
    # load_subconfig would skip a missing file without a word.
    raise HubConfigError(f"ERUMLAB_HUB_BASE_CONFIG: no hub configuration at {base_config}")
load_subconfig(str(base_config))  # noqa: F821 (provided by JupyterHub)


# --- the spawner: a Slurm job per server, after the portal said yes -----------------
class ErumlabSlurmSpawner(PortalSessionMixin, SlurmSpawner):
    """SlurmSpawner that asks the portal first and turns its profile into the job request."""

    cpu_partition = Unicode("cpu", config=True, help="Partition for profiles without GPUs.")
    gpu_partition = Unicode("gpu", config=True, help="Partition for GPU profiles.")
    gpu_gres = Unicode("gpu:{gpus}", config=True,
                       help='The job\'s --gres for a GPU profile; "{gpus}" is its GPU count.')

    # SlurmSpawner's script, with the account and the QOS (batchspawner has the
    # traits but its script leaves them out). {{cmd}} is batchspawner-singleuser
    # followed by the server's command.
    batch_script = Unicode("""#!/bin/bash
#SBATCH --output={{homedir}}/jupyterhub_slurmspawner_%j.log
#SBATCH --job-name=erumlab-notebook
#SBATCH --chdir={{homedir}}
#SBATCH --export={{keepvars}}
#SBATCH --get-user-env=L
{% if partition %}#SBATCH --partition={{partition}}
{% endif %}{% if account %}#SBATCH --account={{account}}
{% endif %}{% if qos %}#SBATCH --qos={{qos}}
{% endif %}{% if runtime %}#SBATCH --time={{runtime}}
{% endif %}{% if memory %}#SBATCH --mem={{memory}}
{% endif %}{% if gres %}#SBATCH --gres={{gres}}
{% endif %}{% if nprocs %}#SBATCH --cpus-per-task={{nprocs}}
{% endif %}{% if reservation %}#SBATCH --reservation={{reservation}}
{% endif %}{% if options %}#SBATCH {{options}}
{% endif %}
set -euo pipefail

trap 'echo SIGTERM received' TERM
{{prologue}}
{% if srun %}{{srun}} {% endif %}{{cmd}}
echo "jupyterhub-singleuser ended gracefully"
{{epilogue}}
""", config=True, help="The job script (jinja2; the req_* traits without req_).")

    @default("options_form")
    def _default_options_form(self):  # noqa: ANN202
        return PortalSessionMixin.erumlab_options_form

    def _allocate(self, profile: dict[str, Any]) -> list[str]:
        return []  # Slurm assigns the GPUs (--gres), not the hub

    def apply_profile(self, profile: dict[str, Any], gpu_ids: list[str]) -> None:
        super().apply_profile(profile, gpu_ids)  # CPU_LIMIT and MEM_LIMIT for the server
        # batchspawner fills the job script with the user options as well: keep only
        # the profile the portal granted, so that a start through the hub's REST API
        # cannot ask Slurm for more than the portal allowed.
        self.user_options = {"profile": profile["slug"]}
        gpus = int(profile.get("gpus", 0))
        megabytes = round(float(profile["memory_gb"]) * 1024)
        self.req_nprocs = str(profile["cpus"])
        self.req_memory = f"{megabytes // 1024}G" if megabytes % 1024 == 0 else f"{megabytes}M"
        self.req_partition = self.gpu_partition if gpus else self.cpu_partition
        self.req_gres = self.gpu_gres.format(gpus=gpus) if gpus else ""

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        # Slurm sets CUDA_VISIBLE_DEVICES to the job's own GPUs; the hub knows none.
        env.pop("CUDA_VISIBLE_DEVICES", None)
        return env


c.JupyterHub.spawner_class = ErumlabSlurmSpawner
# The compute nodes call the hub API (batchspawner-singleuser reports its port there).
c.JupyterHub.hub_ip = env_value("ERUMLAB_HUB_HUB_IP", "0.0.0.0")  # noqa: S104
connect_ip = env_value("ERUMLAB_HUB_CONNECT_IP", "")
if connect_ip:
    c.JupyterHub.hub_connect_ip = connect_ip
# Jobs outlive a hub restart; the hub finds them again from its database.
c.JupyterHub.cleanup_servers = False

portal_url = env_url("ERUMLAB_PORTAL_URL")
slurm = c.ErumlabSlurmSpawner
slurm.portal_api_url = f"{env_url('ERUMLAB_PORTAL_INTERNAL_URL', portal_url)}/api/v1"
slurm.portal_token = env_value("ERUMLAB_HUB_API_TOKEN")
slurm.cpu_partition = env_value("ERUMLAB_SLURM_CPU_PARTITION", "cpu")
slurm.gpu_partition = env_value("ERUMLAB_SLURM_GPU_PARTITION", "gpu")
slurm.gpu_gres = env_value("ERUMLAB_SLURM_GPU_GRES", "gpu:{gpus}")
slurm.req_runtime = env_value("ERUMLAB_SLURM_RUNTIME", "08:00:00")
slurm.req_account = env_value("ERUMLAB_SLURM_ACCOUNT", "")
slurm.req_qos = env_value("ERUMLAB_SLURM_QOS", "")
slurm.req_options = env_value("ERUMLAB_SLURM_OPTIONS", "")
slurm.req_prologue = env_value("ERUMLAB_SLURM_PROLOGUE", "")
# A job may wait in the queue; the portal follows the start's progress meanwhile.
slurm.start_timeout = env_int("ERUMLAB_SLURM_START_TIMEOUT", 600)
