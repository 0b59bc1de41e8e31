"""Placeholder: filled in by the coach family of op writers."""
