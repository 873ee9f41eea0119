"""I-NET SERVICE: orders routes (issue 12)."""
