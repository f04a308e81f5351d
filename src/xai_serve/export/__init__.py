"""Model export for use outside xai-serve: ONNX (``xai export-onnx``, ``xai archive --onnx``) and
the layer graph with the module names that explanation parameters take (``xai graph``)."""
