"""HTTP layer: authentication dependencies, error mapping, headers. No domain logic here."""
