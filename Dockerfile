# The deskpulse image: one image for every deskpulse process (workers, consumers, wallboard,
# ingest, simulator). docker-compose.yml runs it with different commands.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY deskpulse ./deskpulse
COPY streams ./streams
COPY consumers ./consumers
COPY alerting ./alerting
COPY mappings ./mappings
# /app stays the working directory (mappings/ is found there); the process user may write in it
# (not in the code) because the faust worker keeps its data directory in the working directory.
RUN pip install --no-cache-dir . \
    && useradd --system deskpulse \
    && chown deskpulse /app
USER deskpulse
ENV DESKPULSE_STATE_DIR=/tmp/deskpulse
# /metrics (first free port from 9400); the wallboard and ingest ports are set by their commands
EXPOSE 9400
