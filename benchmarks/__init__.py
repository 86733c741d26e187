"""Benchmarks that run chainrule side by side with its peers and report ratios (not tests)."""
