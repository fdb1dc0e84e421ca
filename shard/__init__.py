"""Shard workers: watch configs and targets, render owned objects, write to Redis."""
