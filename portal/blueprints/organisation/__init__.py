"""The customer's registered information with its history (R-62), and its notices (R-61)."""
