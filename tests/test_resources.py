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
