# The benchmark's baseline: the product spec's example shape, a python-slim-style single-stage
# image on the same Debian bookworm base, with the same locked dependencies and the same service.
# Debian's python3 + pip stand in for the python:3.11-slim image (no image can be pulled here);
# the build tools are installed for the dependency install and purged in the same layer, and pip
# and setuptools are removed at the end. The apt caches are cleaned in each layer, as the
# python:slim images do (docker-clean). Built by bench/benchmark.py with app/ as the context.
ARG BASE_IMAGE
# checkov:skip=CKV_DOCKER_7: bench/benchmark.py passes the local Debian base by digest
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# "python:slim": an interpreter with pip. Unpinned apt packages, as in the spec's example (and
# $ca is an optional pair of apt options: word splitting is meant).
# hadolint ignore=DL3008,SC2086
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then ca="-o Acquire::https::CAInfo=/run/secrets/ca"; else ca=; fi \
 && apt-get $ca update \
 && apt-get $ca install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

WORKDIR /app
COPY requirements.lock .
# Build tools unpinned as in the spec's example; $ca is an optional pair of apt options (split on purpose).
# hadolint ignore=DL3008,SC2086
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; ca="-o Acquire::https::CAInfo=/run/secrets/ca"; else ca=; fi \
 && apt-get $ca update \
 && apt-get $ca install -y --no-install-recommends gcc python3-dev libc6-dev \
 && pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock \
 && apt-get purge -y --auto-remove gcc python3-dev libc6-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml .
COPY src src
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && pip install --no-cache-dir --no-deps . \
 && pip uninstall -y pip setuptools \
 && rm -rf /app/src /app/build

RUN useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
USER 65532:65532
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "-m", "csm", "healthcheck"]
ENTRYPOINT ["python", "-m", "csm"]
CMD ["serve"]
