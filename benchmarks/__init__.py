"""Benchmarks for the course server: fan-out, polling vs push, cross-process delivery."""
