"""Pure-Python statistics for the experimentation platform: power, tests, checks and decisions."""
