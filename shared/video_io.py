"""Video files in and out: read any container ffmpeg reads (PyAV), write MP4 (H.264 through PyAV) and animated GIF
(imageio), and lay videos out in a labelled grid.

Every reader error is one line naming the file: a missing, corrupt or empty file, a file with no video
stream or with zero decodable frames. Frames are (F, H, W, 3) uint8 RGB. `.npy` files holding such an
array are read too (the lossless form the apps keep their generated samples in).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.atomic import write_bytes

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".npy")


class VideoReadError(ValueError):
    """A video file that cannot be read as frames; the message is one line starting with the path."""


def check_frames(frames: np.ndarray, where: str = "video") -> np.ndarray:
    """Return `frames` as (F, H, W, 3) uint8; raise VideoReadError (one line, naming `where`) otherwise."""
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise VideoReadError(f"{where}: expected frames of shape (F, H, W, 3), got {a.shape}")
    if a.shape[0] == 0:
        raise VideoReadError(f"{where}: zero frames")
    if a.dtype != np.uint8:
        raise VideoReadError(f"{where}: expected uint8 frames, got {a.dtype}")
    return a


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """Return the file's frames as (F, H, W, 3) uint8 RGB (at most `max_frames`, from the start)."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: empty file")
    if path.suffix.lower() == ".npy":
        try:
            frames = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise VideoReadError(f"{path}: not a numpy frame array ({' '.join(str(exc).split())})") from None
        frames = check_frames(frames, str(path))
        return frames[:max_frames] if max_frames else frames
    import av

    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames and len(frames) >= max_frames:
                    break
    except VideoReadError:
        raise
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise VideoReadError(f"{path}: not a readable video ({type(exc).__name__}: {' '.join(str(exc).split())})") from None
    if not frames:
        raise VideoReadError(f"{path}: zero frames")
    return np.stack(frames)


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int = 8, scale: int = 1) -> Path:
    """Write frames as an H.264 MP4 (see mp4_bytes), atomically."""
    return write_bytes(path, mp4_bytes(check_frames(frames, str(path)), fps, scale))


def mp4_bytes(frames: np.ndarray, fps: int = 8, scale: int = 1) -> bytes:
    """Encode frames as an H.264 MP4 in memory (yuv420p, sides padded to even; `scale` repeats pixels)."""
    import av

    frames = check_frames(frames)
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: int = 8, scale: int = 1) -> Path:
    """Write frames as a looping animated GIF (`scale` repeats pixels), atomically."""
    import imageio.v3 as iio

    frames = check_frames(frames, str(path))
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    data = iio.imwrite("<bytes>", list(frames), extension=".gif", duration=1000 / fps, loop=0)
    return write_bytes(path, data)


def write_npy(path: str | os.PathLike, frames: np.ndarray) -> Path:
    """Write frames losslessly as a .npy array (what `read_video` reads back exactly), atomically."""
    buffer = io.BytesIO()
    np.save(buffer, check_frames(frames, str(path)), allow_pickle=False)
    return write_bytes(path, buffer.getvalue())


def video_grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 2, background: int = 255) -> np.ndarray:
    """Tile equally long videos into one: rows x columns of (F, H, W, 3) clips, `gap` pixels apart."""
    if not rows or not rows[0]:
        raise ValueError("video_grid: no videos")
    f, h, w, _ = np.asarray(rows[0][0]).shape
    cols = max(len(r) for r in rows)
    out = np.full((f, len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), background, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, clip in enumerate(row):
            clip = np.asarray(clip)
            if clip.shape != (f, h, w, 3):
                raise ValueError(f"video_grid: clip ({i}, {j}) has shape {clip.shape}, expected {(f, h, w, 3)}")
            out[:, i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = clip
    return out
