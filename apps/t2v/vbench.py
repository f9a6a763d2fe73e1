"""Two of VBench's temporal-quality dimensions that need no model: temporal flickering (exact) and a motion-smoothness proxy.

Temporal flickering (VBench, Vchitect/VBench `temporal_flickering.py`): the mean absolute
difference between consecutive frames, over pixels and channels in 0-255 and averaged over the
frame pairs, turned into a score: `(255 - mean_t MAE(frame_t, frame_t+1)) / 255`; 1 for a frozen
video. VBench computes it on static-scene prompts only, where any change is flicker; on moving
scenes it also counts motion, so compare models on the same prompts.

Motion smoothness (a PROXY, not VBench's number): VBench drops every odd frame, re-creates it with
the AMT-S frame-interpolation network from its two even neighbours and scores
`(255 - MAE(real, interpolated)) / 255`. AMT-S cannot be downloaded here; this proxy interpolates
linearly (the mean of the two neighbours), which rewards the same property (each frame lies
between its neighbours) but is blind to motion that a learned interpolator would track.
"""

from __future__ import annotations

import numpy as np


def _as_frames(video: np.ndarray) -> np.ndarray:
    v = np.asarray(video, dtype=np.float64)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"expected a video of shape (F, H, W, 3), got {v.shape}")
    return np.nan_to_num(v, nan=0.0, posinf=255.0, neginf=0.0)


def temporal_flickering(video: np.ndarray) -> float:
    """VBench's temporal flickering score of one video (frames in 0-255); 1.0 for a single frame."""
    v = _as_frames(video)
    if v.shape[0] < 2:
        return 1.0
    mae = np.abs(np.diff(v, axis=0)).mean(axis=(1, 2, 3))
    return float((255.0 - mae.mean()) / 255.0)


def motion_smoothness_proxy(video: np.ndarray) -> float:
    """Linear-interpolation proxy of VBench's motion smoothness (see the module docstring); 1.0 under 3 frames."""
    v = _as_frames(video)
    if v.shape[0] < 3:
        return 1.0
    odd = v[1:-1:2]
    interpolated = (v[0:-2:2] + v[2::2])[: len(odd)] / 2.0
    return float((255.0 - np.abs(odd - interpolated).mean()) / 255.0)
