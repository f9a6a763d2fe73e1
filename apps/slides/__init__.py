"""Personalised slide decks from papers, aligned to a presenter's example deck (SlideTailor + SFT and DPO)."""
