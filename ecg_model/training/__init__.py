"""Layer 3, training: configuration, the model registry, run folders and their
status, the trainer, metrics, and fitting the rhythm step on training records.

Imports ``core``, ``data`` and ``inference`` (a fitted model is scored through
the same predictor a deployment uses).
"""
