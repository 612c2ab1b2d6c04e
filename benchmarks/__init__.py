"""Reproducible benchmarks that print ratios against the raw tools (`python -m benchmarks.<name>`)."""
