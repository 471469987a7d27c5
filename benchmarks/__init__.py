"""Benchmarks: latency, throughput, memory, parameters, FLOPs and quality of every backend."""
