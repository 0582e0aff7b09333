"""The TF1 Hub format: module specs, ``hub.Module`` and TF2 interop (its checkpoint exporter is
:mod:`tfhub.exporters.tf1_checkpoint`)."""
