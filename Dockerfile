# Image for compose.yaml: one recstream process per container (worker, or the one-shot init).
# Build stage: a virtualenv with recstream and its wheels; the runtime stage copies only that.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream ./stream
RUN pip install .

FROM python:3.11-slim AS runtime
# A fixed, unprivileged user: RocksDB state and the Qdrant Edge shard live under /data.
RUN groupadd --system --gid 10001 recstream \
 && useradd --system --uid 10001 --gid recstream --home-dir /app --shell /usr/sbin/nologin recstream \
 && mkdir -p /app /data \
 && chown recstream:recstream /data
COPY --from=build /opt/venv /opt/venv
# NUMBA_CACHE_DIR: the ranking kernels (stream/domain/relation_kernels.py) are compiled at the
# first start and cached; the installed package is not writable by this user, /data is.
# JSON Schemas validated at ingestion (the installed package finds them via RECSTREAM_SCHEMAS_DIR).
COPY schemas /app/schemas
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RECSTREAM_SCHEMAS_DIR=/app/schemas \
    RECSTREAM_DATA_DIR=/data \
    RECSTREAM_METRICS_PORT=9100 \
    NUMBA_CACHE_DIR=/data/numba-cache
WORKDIR /app
USER recstream:recstream
VOLUME ["/data"]
EXPOSE 9100 6066
CMD ["recstream", "worker", "--web-port", "6066"]
