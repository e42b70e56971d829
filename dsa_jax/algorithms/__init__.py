"""Algorithms: the Program contract every algorithm provides, and the algorithms."""
