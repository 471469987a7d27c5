"""Export: checkpoint -> ONNX / ORT / TensorRT artifacts with stored reference outputs."""
