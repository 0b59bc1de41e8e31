"""Placeholder: filled in by the partners family of op writers."""
