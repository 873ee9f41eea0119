"""I-NET SERVICE: public routes (issue 12)."""
