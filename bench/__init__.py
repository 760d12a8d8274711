"""Benchmarks and calibration scripts (not part of the deployed application)."""
