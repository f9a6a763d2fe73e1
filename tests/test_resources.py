"""Stage time and peak memory: the sampler sees a transient allocation; records merge by key."""

from __future__ import annotations

import json
import time

import numpy as np

from shared.resources import PeakRSS, record_resources, rss_mb


def test_peak_rss_sees_a_transient_allocation_and_records_merge(tmp_path):
    with PeakRSS(interval_s=0.01) as usage:
        block = np.ones(300 * 2**20 // 8)  # 300 MB, touched
        time.sleep(0.2)
        del block
    assert usage.peak_mb - usage.start_mb > 250
    assert usage.end_mb < usage.peak_mb - 200  # freed (a large numpy array is its own mapping)
    assert usage.seconds >= 0.2
    record_resources(tmp_path / "r.json", "sample", usage)
    with PeakRSS() as small:
        pass
    record_resources(tmp_path / "r.json", "fit", small)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert list(saved) == ["sample", "fit"] and saved["sample"]["peak_rss_mb"] == round(usage.peak_mb, 1)
    assert rss_mb() > 10
