# The deskpulse image: one image for every deskpulse process (simulator, workers, consumers).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY deskpulse ./deskpulse
COPY streams ./streams
COPY consumers ./consumers
COPY alerting ./alerting
COPY mappings ./mappings
RUN pip install --no-cache-dir . && useradd --system deskpulse
USER deskpulse
ENV DESKPULSE_STATE_DIR=/tmp/deskpulse
EXPOSE 9400
