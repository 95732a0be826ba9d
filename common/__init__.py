"""Shared by every stage: data, plots, run records, the command line, comparison.

Nothing in here is part of a lesson about neural networks; the maths of each
network lives in its own stage folder.
"""
