# The users' JupyterLab servers, one container per user, started by the hub
# (ErumlabDockerSpawner). Build context: the repository root:
#   docker compose --profile build build singleuser
#
# Holds the erumlab package for erumlab.science (physics/ML core) and
# erumlab.client (the portal's REST client). torch comes from TORCH_INDEX_URL,
# the CPU wheels by default; a CUDA index gives the CUDA wheel.
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/erumlab

RUN pip install --no-cache-dir "torch==2.13.0" --index-url "${TORCH_INDEX_URL}"

COPY pyproject.toml README.md ./
COPY platform/ platform/
# jupyterhub: the same major version as the hub (jupyterhub-singleuser).
RUN pip install --no-cache-dir "jupyterhub>=6.1,<7" "jupyterlab>=4.4,<5" .

# The home is a per-user volume (erumlab-home-<user>) mounted on /home/jovyan.
RUN useradd --uid 1000 --create-home --shell /bin/bash jovyan
USER jovyan
WORKDIR /home/jovyan
EXPOSE 8888
CMD ["jupyterhub-singleuser"]
