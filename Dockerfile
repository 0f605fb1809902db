# The loglytics worker image: the package and its runtime dependencies, nothing else.
# Services (Kafka, ClickHouse, Ollama, vLLM) are external: see docker-compose.kafka.yml.

# Build stage: a C compiler for loglytics._speedups (the ingest hot path), kept out of
# the runtime image; without it the package would fall back to pure Python.
FROM python:3.11-slim AS wheel
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# README.md* : pyproject names a readme; build with a stub when the checkout has none.
COPY pyproject.toml setup.py README.md* ./
COPY loglytics ./loglytics
RUN test -f README.md || echo "# loglytics" > README.md \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=wheel /wheels /wheels
RUN pip install /wheels/*.whl \
    && python -c "import loglytics.speedups as s; assert s.COMPILED" \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 loglytics \
    && mkdir -p /var/lib/loglytics \
    && chown loglytics /var/lib/loglytics

USER loglytics
WORKDIR /var/lib/loglytics
ENV STATE_DIR=/var/lib/loglytics \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=6066
EXPOSE 6066
CMD ["loglytics", "worker"]
