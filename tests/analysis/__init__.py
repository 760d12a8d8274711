"""Tests of the pure-Python analysis package."""
