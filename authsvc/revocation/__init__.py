"""Revocation: persisted first, then announced to every instance."""
