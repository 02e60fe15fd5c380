"""RGB-only deployment: end-to-end ONNX export, ONNX Runtime inference and the precision per CPU."""
