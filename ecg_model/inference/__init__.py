"""Layer 2, inference: what a deployment that only predicts needs.

``predict`` (pictures and signals -> classes), ``rhythm`` (applying a fitted
rhythm step to RR intervals), ``strip`` (reading a rhythm strip picture) and
``explain`` (Grad-CAM). Imports ``core`` and ``data``, never training code.
"""
