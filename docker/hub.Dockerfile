# JupyterHub for erumlab with the Docker spawner (one container per user).
# Build context: the repository root (see docker-compose.yml).
#
# Runs as root: it drives the host's Docker through /var/run/docker.sock, which
# is root-equivalent access to the host whatever user the hub runs as.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The hub side of erumlab (spawners, settings helpers); its `docker` extra
# pulls dockerspawner. configurable-http-proxy is the proxy JupyterHub starts.
COPY spawners/ /opt/erumlab-spawners/
RUN pip install --no-cache-dir \
        "/opt/erumlab-spawners[docker]" \
        "jupyterhub>=6.1,<7" \
        "oauthenticator>=17.4" \
        "configurable-http-proxy>=0.4"

COPY spawners/jupyterhub_config.py /srv/jupyterhub/jupyterhub_config.py

WORKDIR /srv/jupyterhub
# 8001: the proxy (public, behind the TLS proxy); 8081: the hub API (internal).
EXPOSE 8001 8081
CMD ["jupyterhub", "-f", "/srv/jupyterhub/jupyterhub_config.py"]
