# syntax=docker/dockerfile:1
# Build stage: resolve and install Python dependencies into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY inference ./inference
COPY storage ./storage
# Runtime only: ONNX Runtime serves the models, so neither torch nor the GPL test server is installed;
# Dask's client is, so that INFERENCE_EXECUTOR=dask://host:port (which compose passes on) works.
# At the releases the suite passed with (constraints.txt, `make lock`), but yt-dlp's newest.
RUN pip install -c constraints.txt ".[dask]"

# Runtime stage: slim, ffmpeg for decoding and section downloads, no compilers, non-root;
# fonts-droid-fallback (7.3 MB) for the mood map's song names in Chinese, Japanese and Korean.
FROM python:3.11-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg fonts-droid-fallback ca-certificates tzdata tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 moodbot \
 && mkdir -p /data && chown moodbot:moodbot /data && chmod 700 /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data \
    INFERENCE_WORKERS=1
USER moodbot
WORKDIR /home/moodbot
VOLUME ["/data"]
# The model weights ship inside the installed `inference` package (inference/weights/).
# Liveness: the running bot's event loop touches /data/heartbeat every 10 s; `--alive` fails once it
# is 60 s old (a hung loop, a dead bot). `docker compose exec bot python -m bot --check` says why.
HEALTHCHECK --interval=30s --timeout=10s --start-period=2m --retries=3 CMD ["python", "-m", "bot", "--alive"]
# tini as PID 1: it passes SIGTERM on and reaps orphans. A download worker killed mid-fetch (its
# time limit) leaves its ffmpeg to PID 1, which Python, there, would never reap: zombies piled up.
ENTRYPOINT ["tini", "--", "python", "-m", "bot"]
