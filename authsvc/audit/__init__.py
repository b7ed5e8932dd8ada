"""Audit log: one row per management action (who, what, when, target), never a secret."""
