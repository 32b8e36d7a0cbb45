"""Apate's engine: media intake, provenance, detection and protection.

This package never imports streamlit, so the CLI, tests and notebooks use it directly.
"""

__version__ = "0.1.0"
