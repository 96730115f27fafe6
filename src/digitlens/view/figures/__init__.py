"""Matplotlib figures of the library's results: explanations, pre-processing steps, the lab."""
