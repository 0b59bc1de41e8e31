"""Placeholder: filled in by the stock family of op writers."""
