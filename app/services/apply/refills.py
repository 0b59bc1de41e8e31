"""Placeholder: filled in by the refills family of op writers."""
