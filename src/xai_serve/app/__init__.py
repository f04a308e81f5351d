"""The application layer: the demo (every section of `make demo`), the default model and the report
links. It sits above every library layer and may import any of them; nothing below imports it."""
