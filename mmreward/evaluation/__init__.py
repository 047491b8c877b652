"""Evaluation: benchmark loaders, exact official metrics, the runner."""
