"""The TF1 Hub format: module specs, ``hub.Module``, exporters and TF2 interop."""
