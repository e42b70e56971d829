"""Baselines the paper compares against."""
