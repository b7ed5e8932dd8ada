"""Per-tenant signing keys: generation, public JWKs and encryption at rest."""
