"""Apate's Streamlit dashboard: the entry script and shared UI pieces (pages live in ../pages)."""
