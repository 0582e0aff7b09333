"""TF2 SavedModels: ``load``, the Reusable SavedModel interface and ``KerasLayer``."""
