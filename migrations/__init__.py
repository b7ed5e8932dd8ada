"""Alembic scripts (env.py, versions/), installed as the package ``authsvc.migrations``."""
