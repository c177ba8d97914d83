from setuptools import find_packages, setup

setup(
    name="market_assets",
    version="0.1.0",
    description="Index compositions and daily, weekly and monthly bars from Stooq as Dagster assets",
    packages=find_packages(exclude=["market_assets_tests", "market_assets_tests.*"]),
    # The indices followed by default (MARKET_ASSETS_INDICES_FILE replaces them).
    package_data={"market_assets.sources": ["indices.yaml"]},
    python_requires=">=3.11",
    install_requires=[
        # dagster-k8s has no release matching dagster 1.13.28: pin the trio together.
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-k8s==0.29.27",
        "pandas==3.1.1",
        "pyarrow==26.0.1",
        "lxml==6.1.3",
        "requests==2.34.2",
        "exchange-calendars==4.13.2",
        "pyyaml==6.0.4",
        "fsspec==2026.9.0",
        # SQL over the lake (market_assets/lake/sql.py): parquet is built into its wheel.
        "duckdb==2.0.0",
    ],
    extras_require={
        # Run, event and schedule storage in PostgreSQL: the instance of a deployment (deploy/).
        "postgres": ["dagster-postgres==0.29.27"],
        # An s3:// parquet root (MARKET_ASSETS_DATA_ROOT), shared by every pod of a run.
        "s3": ["s3fs==2026.9.0"],
        "test": [
            "pytest==9.2.0",
            "pytest-timeout==2.4.0",
            "dagster-postgres==0.29.27",
            "jsonschema==4.26.0",
            # Drives Debian's Chromium (.ci/debian-packages) in the UI tests; it downloads no browser.
            "playwright==1.65.2",
            # A reader the lake's Hive layout is tested with, besides pyarrow and DuckDB.
            "polars==2.1.0",
            "polars-runtime-32==2.1.0",
            # The lake on an S3-compatible server on loopback (moto's server mode), through s3fs.
            "moto[server]==5.2.5",
            "s3fs==2026.9.0",
        ],
    },
)
