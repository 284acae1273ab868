"""Layer 1, data: databases (one adapter each), signals (read, clean, beats),
the drawing contract (``render``), picture decoding (``pictures``) and datasets.

Imports only ``core``. Used by both inference and training.
"""
