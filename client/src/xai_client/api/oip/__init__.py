"""Open Inference Protocol (v2) gRPC stubs, generated from protos/oip (do not edit).

Package ``inference``, like kserve's and tritonclient's own stubs: a process can import only one
of the three (duplicate symbols in the protobuf descriptor pool)."""
