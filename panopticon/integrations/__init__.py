"""Integrations of the embeddable library with operator frameworks (optional extras)."""
