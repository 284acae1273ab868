"""Layer 4, what the dashboard's pages use: the cached model and job registry
(``webapp``), background training jobs (``jobs``), the runs table and the
active model (``runs``), and Altair charts (``charts``). No numerical code of
its own beyond shaping tables for charts.
"""
