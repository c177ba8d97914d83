"""The Dagster instance of one machine: its sqlite storage, with connections kept open (`pooled_sqlite`,
selected in `dagster.yaml`)."""
