"""Procedural scenes with exact ground truth: still compositions (image.py) and their detector/checker
(checker.py), used by the text-to-image app and, with motion and time, by the video apps."""
