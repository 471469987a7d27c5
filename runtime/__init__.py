"""Device runtime: runs exported engines without torch (numpy, pillow, click, onnxruntime)."""
