# xai-serve: TorchServe with the xai-serve explanation handlers (CPU build).
#
#   docker build -t xai-serve:0.1.0 .
#   docker run --rm -p 127.0.0.1:8080-8082:8080-8082 -p 127.0.0.1:7070-7071:7070-7071 \
#       -v "$PWD/model_store:/home/xai/model_store:ro" -v "$PWD/.xai-serve:/home/xai/.xai-serve" \
#       xai-serve:0.1.0
#
# `--host 0.0.0.0` binds only the inference listeners (REST 8080, gRPC 7070); management (8081, 7071)
# and metrics (8082) stay on the container's loopback (the health check runs inside the container)
# unless `--management-host 0.0.0.0` / `--metrics-host 0.0.0.0` are appended to the command.
# The second volume is the state dir: TorchServe's token file (key_file.json) lands there, where
# `xai-client` on the host finds it (./.xai-serve/key_file.json). Token auth stays on.
#
# One variable selects the engine: XAI_SERVE_ENGINE=torchserve (default: REST 8080, gRPC 7070, management
# 8081/7071, metrics 8082) or XAI_SERVE_ENGINE=kserve (KServe's model server, the Open Inference Protocol
# v2 with explanations: REST and metrics 8080, gRPC 7070), e.g. `docker run -e XAI_SERVE_ENGINE=kserve ...`.
#
# Python 3.11 (torchserve 0.12.0 is published for 3.8-3.11; zennit 1.0 needs >= 3.11) and Java 17
# (the TorchServe frontend calls Java 11+ APIs). Torch comes from the CPU wheel index: the PyPI
# wheels are CUDA builds several GB larger.
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    XAI_SERVE_ENGINE=torchserve

# Debian's security updates move the exact package version, so the JRE is pinned by major version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1

WORKDIR /opt/xai-serve
COPY client/ client/
COPY pyproject.toml README.md ./
COPY src/ src/
COPY handlers/ handlers/
RUN pip install --no-cache-dir ./client .

RUN groupadd --gid 10001 xai \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin xai \
    && mkdir -p /home/xai/model_store \
    && chown 10001:10001 /home/xai/model_store
USER 10001:10001
WORKDIR /home/xai

# REST inference, management, metrics; gRPC inference, management.
EXPOSE 8080 8081 8082 7070 7071
VOLUME ["/home/xai/model_store"]

# /metrics is the one endpoint TorchServe serves without a token; the kserve engine's readiness is open.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/v2/health/ready' if os.environ.get('XAI_SERVE_ENGINE') == 'kserve' else 'http://127.0.0.1:8082/metrics', timeout=4)"]

ENTRYPOINT ["xai", "serve"]
CMD ["--store", "/home/xai/model_store", "--state-dir", "/home/xai/.xai-serve", "--host", "0.0.0.0", "--foreground"]
