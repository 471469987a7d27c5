"""Torch-free benchmarking core shared by ``python -m runtime.bench`` and ``benchmarks/``.

One protocol for every engine on every machine: load, first run (peak memory measured), warm-up,
then rounds in which every engine runs once per round, so that engine i's k-th sample and the
reference's k-th sample come from the same slice of time and their ratio is a fair pair even on a
busy machine. One JSON schema (:mod:`.schema`) so reports from many machines merge.

Modules: timing (rounds, statistics), memory (peak RSS), machine (description, matmul peak),
resolutions (named sizes), engines (runtime runners as benchmark engines), schema (the JSON),
protocol (runs a group of engines), cli (the command).
"""
