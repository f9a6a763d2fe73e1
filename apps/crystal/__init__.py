"""Crystal generation with iterative preference alignment (PLaID++): Wyckoff text, CHGNet rewards, iterative DPO."""
