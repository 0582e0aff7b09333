"""Common signatures and their helpers."""
