"""TorchServe inference/management gRPC stubs, generated from protos/torchserve (do not edit)."""
