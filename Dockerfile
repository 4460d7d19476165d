# stinercut-svc: Python 3.11 + ffmpeg, runs as an unprivileged user.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Pinned, hash-checked dependencies first (a layer that changes only with the lock),
# then the package's source. It is not pip-installed: building a wheel would fetch
# the build backend (setuptools) unpinned; the source on PYTHONPATH and a
# `stinercut` launcher give the same command without anything outside the lock.
COPY requirements/runtime.lock ./requirements/runtime.lock
RUN pip install --require-hashes -r requirements/runtime.lock
COPY stinercut_svc ./stinercut_svc
ENV PYTHONPATH=/app
RUN printf '#!/bin/sh\nexec python -m stinercut_svc "$@"\n' > /usr/local/bin/stinercut \
    && chmod 0755 /usr/local/bin/stinercut \
    && python -c "import stinercut_svc.app"

RUN useradd --create-home --uid 10001 stinercut \
    && mkdir -p /data /shared-videos \
    && chown stinercut:stinercut /data /shared-videos
USER stinercut

ENV HOST=0.0.0.0 \
    PORT=8000 \
    ROLE=all \
    DATA_DIR=/data \
    SHARED_VIDEO_PATH=/shared-videos

EXPOSE 8000
VOLUME ["/data", "/shared-videos"]
# /api/health answers on every ROLE (api, worker, all); 503 (unhealthy) fails the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os,sys,urllib.request; u='http://127.0.0.1:%s/api/health' % os.environ.get('PORT','8000'); sys.exit(urllib.request.urlopen(u, timeout=4).status != 200)"
# ROLE=all (default) | api | worker: see compose.yml and the README's deployment section.
CMD ["stinercut", "serve"]
