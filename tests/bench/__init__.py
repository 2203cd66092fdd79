"""Benchmarks: programs that print figures (`invoke bench-quality`), not tests with thresholds."""
