"""Benchmarks: every backend side by side (latency, memory, parameters, MACs, quality) -> reports/.

``python -m benchmarks.run`` measures; ``python -m benchmarks.report`` merges JSON files from
several machines. The torch-free protocol and JSON schema live in :mod:`runtime.bench`, so the
device benchmark (``python -m runtime.bench``) writes the same files.
"""
