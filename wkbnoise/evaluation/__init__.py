"""Evaluation: campaigns, HDF5 store, validation report, results page."""
