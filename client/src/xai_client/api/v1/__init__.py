"""xai_serve.v1 messages, generated from protos/xai_serve/v1 (do not edit)."""
