# Image for compose.yaml: one recstream worker per container.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream ./stream
COPY schemas ./schemas
RUN pip install --no-cache-dir -e .
ENV RECSTREAM_DATA_DIR=/data
EXPOSE 9100 6066
CMD ["recstream", "worker"]
