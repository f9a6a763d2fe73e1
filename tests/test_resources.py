"""Stage time and peak memory: the sampler sees a transient allocation; records merge by key."""

from __future__ import annotations

import json
import mmap
import time

from shared.resources import PeakRSS, record_resources, rss_mb


def test_peak_rss_sees_a_transient_allocation_and_records_merge(tmp_path):
    size = 300 * 2**20
    with PeakRSS(interval_s=0.01) as usage:
        block = mmap.mmap(-1, size)  # fresh pages (malloc could hand back memory that is already resident)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        time.sleep(0.2)
        block.close()
    assert usage.peak_mb - usage.start_mb > 250
    assert usage.end_mb < usage.peak_mb - 200  # unmapped
    assert usage.seconds >= 0.2
    record_resources(tmp_path / "r.json", "sample", usage)
    with PeakRSS() as small:
        pass
    record_resources(tmp_path / "r.json", "fit", small)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert list(saved) == ["sample", "fit"] and saved["sample"]["peak_rss_mb"] == round(usage.peak_mb, 1)
    assert rss_mb() > 10


def test_run_resources_table_lists_every_stage(tmp_path):
    from shared.resources import resources_markdown, run_resources

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "resources.json").write_text(json.dumps({"fit": {"seconds": 10.0, "peak_rss_mb": 1024.0}}))
    (tmp_path / "a" / "b" / "resources.json").write_text(
        json.dumps({"fit": {"seconds": 5.0, "peak_rss_mb": 2048.0}, "sample": {"seconds": 1.0, "peak_rss_mb": None}}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "resources.json").write_text("{not json")
    assert [(r["stage"], r["key"]) for r in run_resources(tmp_path)] == [("a", "fit"), ("a/b", "fit"), ("a/b", "sample")]
    table = resources_markdown(tmp_path).splitlines()
    assert table[2:] == ["| a | 10 | 1.00 |", "| a/b | 5 | 2.00 |", "| a/b (sample) | 1 | - |", "| all stages | 16 | 2.00 |"]


# Each allocator check runs in a fresh interpreter: glibc's settings are process-wide and its heap
# state depends on everything the process did before.
_HEAP_AFTER_FREE = r"""
import sys
from shared.resources import release_memory, rss_mb, set_mmap_threshold
mode = sys.argv[1]
if mode == "threshold":
    assert set_mmap_threshold(128)
big_size, size = 8 << 20, 1 << 20  # variables: a constant expression would be folded into one object
big = b"\1" * big_size
del big  # freeing an mmapped block raises glibc's adaptive threshold to its size
before = rss_mb()
blocks = [b"\1" * size for _ in range(200)]  # 1 MiB each: heap by default, mmap at a 128 KiB threshold
keep = blocks[-1]  # alive at the top of the heap, so the heap cannot shrink from its end
del blocks
after_free = rss_mb()
if mode == "release":
    release_memory()
print(round(rss_mb() - before), round(after_free - before))
"""

_FRAGMENTED = r"""
from shared.resources import release_memory, rss_mb
size = 2000  # a variable: `b"\1" * 2000` would be folded into one shared object
before = rss_mb()
blocks = [b"\1" * size for _ in range(100_000)]  # 200 MB of small heap blocks
keep = blocks[::32]  # one in 32 stays alive: the heap is fragmented, not free at its end
del blocks
held = rss_mb()
release_memory()
print(round(held - before), round(rss_mb() - before))
"""


def _run(code: str, *args: str, env: dict | None = None) -> list[int]:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | (env or {})
    environment["PYTHONPATH"] = str(root)
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environment,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return [int(v) for v in out.stdout.split()]


def test_mmap_threshold_returns_freed_blocks_that_the_default_heap_keeps():
    kept_default, _ = _run(_HEAP_AFTER_FREE, "default")
    kept_threshold, _ = _run(_HEAP_AFTER_FREE, "threshold")
    kept_released, held_before_release = _run(_HEAP_AFTER_FREE, "release")
    assert kept_default > 150  # glibc's default: 199 freed MiB stay resident
    assert kept_threshold < 20  # mmapped, so unmapped when freed
    assert held_before_release > 150 and kept_released < 20  # release_memory trims what the heap held


def test_release_memory_returns_the_free_pages_of_a_fragmented_heap():
    held, after = _run(_FRAGMENTED)
    assert held > 150  # the freed 31/32 are still resident
    assert after < held / 3


def test_mmap_threshold_leaves_a_user_setting_and_rejects_negatives():
    import pytest

    from shared.resources import set_mmap_threshold
    from shared.training import TrainerArgs

    assert _run("from shared.resources import set_mmap_threshold; print(int(set_mmap_threshold(128)))",
                env={"MALLOC_MMAP_THRESHOLD_": "65536"}) == [0]
    assert set_mmap_threshold(0) is False
    with pytest.raises(ValueError, match="mmap_threshold_kb"):
        set_mmap_threshold(-1)
    with pytest.raises(ValueError, match="mmap_threshold_kb must be >= 0"):
        TrainerArgs(mmap_threshold_kb=-5)


def test_release_after_only_follows_a_stage_that_grew_the_process(monkeypatch):
    import shared.resources as resources

    released = []
    monkeypatch.setattr(resources, "release_memory", lambda: released.append(1))
    with PeakRSS(interval_s=0.01) as small:
        pass
    assert resources.release_after(small) is False and released == []
    with PeakRSS(interval_s=0.01) as big:
        block = mmap.mmap(-1, 400 * 2**20)
        for offset in range(0, len(block), mmap.PAGESIZE):
            block[offset] = 1
        time.sleep(0.05)
        block.close()
    assert resources.release_after(big) is True and released == [1]  # grew by ~400 MB >= 256
