"""Layer 0, below everything: the class list, user-facing errors, settings and
atomic file writes. Imports nothing else of the package."""
