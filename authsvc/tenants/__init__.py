"""Tenants: workspaces. Every other object belongs to exactly one of them."""
