"""I-NET SERVICE: holders routes (issue 12)."""
