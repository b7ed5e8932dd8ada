"""Credential verification: the verdict, the check pipeline, ``/v1/verify`` and ``/v1/authz``."""
