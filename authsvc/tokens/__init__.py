"""Access tokens (RFC 9068 JWTs): encoding and the one verification function."""
