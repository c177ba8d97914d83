# The code location image of market_assets: the package and the Dagster it runs with, nothing else.
# The same image serves the user-code deployment (a `dagster api grpc` server), the run pods that
# K8sRunLauncher starts and the step pods of k8s_job_executor (deploy/helm/values.yaml).
#
#   docker build -t registry.example.com/market-assets:0.1.0 .

FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/dagster/app

# pyproject.toml holds every pin: the image installs exactly what `pip install -e .` installs
# elsewhere, plus PostgreSQL storage and the s3:// parquet root.
COPY pyproject.toml setup.py ./
COPY market_assets ./market_assets
RUN pip install '.[postgres,s3]' \
    && groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --no-create-home dagster \
    && mkdir -p "$DAGSTER_HOME" \
    && chown dagster:dagster "$DAGSTER_HOME"

# A numeric user, so that Kubernetes can verify `runAsNonRoot`.
USER 10001:10001

EXPOSE 3030
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "3030", "-m", "market_assets"]
