"""Identities: external ids (a customer, an org) whose rate limits are shared by their keys."""
