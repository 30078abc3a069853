# syntax=docker/dockerfile:1
# gradlab's two images, built by docker-compose.yml (README "Deploy with docker compose"):
#   docker build --target api    -t gradlab-api .      the API and `migrate`; no torch
#   docker build --target worker -t gradlab-worker .   a training worker; CUDA build of PyTorch
#
# Dependencies are installed first, from lists read out of the pyproject files
# (deploy/requirements.py), and the code last, so editing code rebuilds only the small last
# layer. Needs BuildKit (Docker 23 and later build with it): the code is installed from a mount.

ARG PYTHON_VERSION=3.11

# -- ui: the dashboard's charting library, installed from the lock file --------------------------
FROM node:20-bookworm-slim AS ui
WORKDIR /ui
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

# -- base: Python, a virtual environment and the user the services run as ----------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    GRADLAB_HOME=/data
# /data is created here, owned by the service user, so that a named volume mounted on it starts
# with that owner (Docker copies the image's folder into a new volume).
RUN python -m venv /opt/venv \
    && groupadd --system --gid 10001 gradlab \
    && useradd --system --uid 10001 --gid gradlab --home-dir /app --shell /usr/sbin/nologin gradlab \
    && mkdir -p /app /data \
    && chown gradlab:gradlab /data
WORKDIR /app
COPY deploy/requirements.py deploy/
COPY pyproject.toml ./
COPY client/pyproject.toml client/

# -- api: the HTTP API and the migrations; the package without its `worker` extra -------------
FROM base AS api
RUN python deploy/requirements.py > /tmp/requirements.txt \
    && pip install --no-cache-dir --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY deploy/healthcheck.py deploy/
COPY --from=ui /ui/node_modules/echarts/dist /app/ui-vendor/echarts
ENV GRADLAB_UI_VENDOR_DIR=/app/ui-vendor/echarts
# The source is mounted, not copied: the layer holds the installed packages alone. --no-deps:
# the dependencies are the layer above, and torch is not among them.
RUN --mount=type=bind,target=/src,rw pip install --no-cache-dir --no-deps /src/client /src
USER 10001:10001
ENV GRADLAB_HOST=0.0.0.0 GRADLAB_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=6s --start-period=20s --retries=3 \
    CMD ["python", "deploy/healthcheck.py", "api"]
CMD ["gradlab-server", "api"]

# -- worker: the package with its `worker` extra, and a CUDA build of PyTorch ------------------
FROM base AS worker
# PyPI's torch 2.13.0 wheel for Linux x86_64 is a CUDA 13.0 build whose CUDA libraries come as
# pip packages: the image needs no CUDA base, only the host's NVIDIA driver (>= 580 for CUDA 13)
# and the NVIDIA container toolkit. For an older driver, build from PyTorch's own index, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
# On a host without a GPU the same image trains on the CPU (device "auto").
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://pypi.org/simple
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
RUN python deploy/requirements.py worker > /tmp/requirements.txt \
    && pip install --no-cache-dir --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY deploy/healthcheck.py deploy/
RUN --mount=type=bind,target=/src,rw pip install --no-cache-dir --no-deps /src/client /src
USER 10001:10001
# The driver parts the NVIDIA runtime mounts (compute for CUDA, utility for nvidia-smi). Which
# GPUs is left to the compose file's reservation (it sets NVIDIA_VISIBLE_DEVICES), not the image.
# MPLCONFIGDIR: mnist1d loads matplotlib, which wants a writable folder; home is read-only.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    MPLCONFIGDIR=/tmp/matplotlib
EXPOSE 9100
# A Celery ping to this worker through the broker, answered by the main process even while a
# job trains; its interval is long because the check loads Celery (about a second).
HEALTHCHECK --interval=60s --timeout=15s --start-period=60s --retries=3 \
    CMD ["python", "deploy/healthcheck.py", "worker"]
CMD ["gradlab-server", "worker"]
