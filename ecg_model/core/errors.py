"""User-facing errors: one line that names the file and the problem."""

from __future__ import annotations


class EcgError(Exception):
    """An input or state problem to report to the user without a traceback.

    The CLI prints ``error: <message>`` and exits with code 2; the dashboard
    shows the message with ``st.error``.
    """
