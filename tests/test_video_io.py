"""shared.video_io: reading any video file (or .npy frames) with one-line errors; MP4, GIF and .npy writers; grids."""

from __future__ import annotations

import numpy as np
import pytest

from shared.video_io import VideoReadError, read_video, video_grid, write_gif, write_mp4, write_npy


def clip(frames: int = 6, side: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = np.full((frames, side, side, 3), 240, np.uint8)
    for t in range(frames):  # a red square moving right: smooth content survives H.264 at crf 18
        out[t, 8:20, 2 + 2 * t:14 + 2 * t] = (220, 30, 30)
    return out + rng.integers(0, 2, out.shape, dtype=np.uint8)


def test_npy_round_trip_is_exact(tmp_path):
    frames = clip()
    assert np.array_equal(read_video(write_npy(tmp_path / "a.npy", frames)), frames)
    assert read_video(tmp_path / "a.npy", max_frames=2).shape == (2, 32, 32, 3)


def test_mp4_and_gif_round_trip_keep_shape_and_content(tmp_path):
    frames = clip()
    mp4 = read_video(write_mp4(tmp_path / "a.mp4", frames, fps=4))
    assert mp4.shape == frames.shape and np.abs(mp4.astype(int) - frames).mean() < 6
    assert read_video(write_mp4(tmp_path / "b.mp4", frames, scale=3)).shape == (6, 96, 96, 3)
    gif = read_video(write_gif(tmp_path / "a.gif", frames))
    assert gif.shape == frames.shape and np.abs(gif.astype(int) - frames).mean() < 6
    odd = read_video(write_mp4(tmp_path / "odd.mp4", clip(side=33)))  # H.264 needs even sides: padded
    assert odd.shape == (6, 34, 34, 3)


def test_bad_files_give_one_line_naming_the_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(b"\x00garbage" * 100)
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    np.save(tmp_path / "shape.npy", np.zeros((4, 8, 8), np.uint8))
    np.save(tmp_path / "zero.npy", np.zeros((0, 8, 8, 3), np.uint8))
    (tmp_path / "noframes.mp4").write_bytes(_truncated_mp4(tmp_path))
    (tmp_path / "audio.wav").write_bytes(_wav())
    cases = {"missing.mp4": "no such file", "empty.mp4": "empty file", "garbage.mp4": "not a readable video",
             "bad.npy": "not a numpy frame array", "shape.npy": "expected frames of shape", "zero.npy": "zero frames",
             "noframes.mp4": "zero frames", "audio.wav": "no video stream"}
    for name, message in cases.items():
        with pytest.raises(VideoReadError) as info:
            read_video(tmp_path / name)
        text = str(info.value)
        assert text.startswith(str(tmp_path / name)) and message in text and "\n" not in text, text


def _truncated_mp4(tmp_path) -> bytes:
    """An MP4 with its header and video stream but its frame data cut off (a download that stopped)."""
    import subprocess

    import imageio_ffmpeg

    full = tmp_path / "full.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=black:s=16x16:r=8", "-frames:v", "2", "-c:v", "libx264", "-movflags", "+faststart",
                    str(full)], check=True)
    data = full.read_bytes()
    return data[:data.find(b"mdat") + 4]


def _wav() -> bytes:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 800)
    return buffer.getvalue()


def test_grid_tiles_clips_and_refuses_mismatched_ones():
    a, b = clip(), 255 - clip()
    grid = video_grid([[a, b], [b]], gap=2)
    assert grid.shape == (6, 66, 66, 3)
    assert np.array_equal(grid[:, :32, 34:], b) and np.array_equal(grid[:, 34:, :32], b)
    assert (grid[:, 34:, 34:] == 255).all()  # the missing cell is background
    with pytest.raises(ValueError, match="clip \\(0, 1\\)"):
        video_grid([[a, clip(frames=5)]])
