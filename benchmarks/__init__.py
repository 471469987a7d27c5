"""Benchmarks: latency, throughput, memory, parameters, FLOPs and quality of every backend.

Several runtimes share one process here (PyTorch, ONNX Runtime, OpenVINO), timed in interleaved
rounds. Worker threads that spin after a call would steal the cores from the next engine and
inflate its time, so OpenMP threads are made passive before torch loads (ONNX Runtime sessions
are created with spinning off, see ``runtime.runners.RunnerConfig.spin``).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
