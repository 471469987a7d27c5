"""``python -m runtime.batch``: upscale whole photo and video collections on a Ray cluster (the ``ray`` extra),
with the same engines, outputs and rules as ``runtime.infer``; resumable, a bad input a failed row."""
