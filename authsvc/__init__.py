"""authsvc: a self-hosted, multi-tenant token service for data APIs."""

__version__ = "0.1.0"
