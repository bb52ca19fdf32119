"""The seed chapter's code, kept broken on purpose: do not copy."""
