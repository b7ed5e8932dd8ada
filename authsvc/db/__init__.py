"""Persistence: SQLAlchemy models and the engine/session factories."""
