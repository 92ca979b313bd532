# cnnplan REST API (and, with --build-arg EXTRAS=worker, the GPU worker). CI lints this file with
# hadolint; no Docker engine runs in CI, so the image itself is not built there.
FROM python:3.11-slim

ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CNNPLAN_HOST=0.0.0.0 \
    CNNPLAN_PORT=8000 \
    CNNPLAN_DATA_DIR=/data

WORKDIR /app

RUN groupadd --system --gid 10001 cnnplan \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin cnnplan \
    && mkdir -p /data \
    && chown 10001:10001 /data

COPY pyproject.toml README.md ./
COPY cnnplan ./cnnplan
COPY solver ./solver
COPY service ./service
RUN if [ -n "$EXTRAS" ]; then pip install --no-cache-dir "/app[$EXTRAS]"; else pip install --no-cache-dir /app; fi

USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CNNPLAN_PORT', '8000'), timeout=4)"]

CMD ["cnnplan", "serve"]
