"""The explanation console (``xai console``): a small web app on loopback that talks to a running
xai-serve only through :mod:`xai_client` (no torch): models with their cards, methods and credentials,
explanations of an uploaded image with every method's parameters, the evidence (decomposed filters,
dissected units, General Pattern Theory component maps), two models side by side, downloads."""
