"""OneRec-style generative recommendation: interaction data, a simulated user with known tastes, and the recommender."""
