"""Scheduler plugins, one per file: filters (latency, residency, labels, locality, capacity, deadline) and
scores (cost, carbon, latency, balance)."""
