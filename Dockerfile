# One image for every equipmon service; docker-compose.yml picks the command.
# Python 3.11, as the tests run here; dependencies from deploy/requirements.lock, the versions
# the tests ran with (tests/test_deployment_files.py keeps it equal to the test environment;
# regenerate it with `python -m tests.test_deployment_files`).
FROM python:3.11-slim
# DejaVu Sans: the PDF label sheet prints Vietnamese asset names with it (api/services/labels.py).
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY deploy/requirements.lock deploy/requirements.lock
RUN pip install --no-cache-dir --no-deps -r deploy/requirements.lock
COPY pyproject.toml README.md ./
COPY telemetry telemetry
COPY collector collector
COPY analytics analytics
COPY api api
COPY device_sims device_sims
COPY stack stack
COPY scenarios scenarios
# --no-deps: everything it needs came from the lock above, nothing is resolved anew.
RUN pip install --no-cache-dir --no-deps .
# The services run as their own user, never root. Docker gives a new named volume the owner of
# the image's folder it is mounted on, so every folder docker-compose.yml mounts a volume on is
# created here and owned by that user; a missing one would be created root-owned, unwritable.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/equipmon --no-create-home equipmon \
    && mkdir -p /var/lib/equipmon/spool /var/lib/equipmon/analytics /var/lib/equipmon/seed \
    && chown -R equipmon:equipmon /var/lib/equipmon
USER equipmon
