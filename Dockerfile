# One image for every equipmon service; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY telemetry telemetry
COPY collector collector
COPY analytics analytics
COPY api api
COPY device_sims device_sims
COPY stack stack
COPY scenarios scenarios
RUN pip install --no-cache-dir .
USER nobody
