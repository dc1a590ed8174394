"""Small neural networks, K at a time (same optimizer rules, registry and schedules as the linear engine)."""
