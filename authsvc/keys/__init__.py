"""API keys: long-lived tenant secrets with grants, limits and an optional identity."""
