"""Generated protobuf/gRPC code (``make protos``; do not edit)."""
