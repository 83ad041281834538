"""Evaluation of the assistant on gold datasets, through the public API only."""
