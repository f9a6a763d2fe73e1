"""shared.modules.MediaCollator: vision inputs follow the batch's sequence order; placeholders get their modality type."""

from __future__ import annotations

import pytest
import torch

from shared.logprobs import collate_packed, media_inputs
from shared.modules import EncodedPair, MediaCollator, PreferenceCollator, SFTCollator

VIDEO, IMAGE = 90, 91


def media(value: float, rows: int) -> dict[str, torch.Tensor]:
    return {"pixel_values_videos": torch.full((rows, 3), value), "video_grid_thw": torch.tensor([[1, rows, 1]])}


def test_pairs_repeat_each_pairs_video_for_chosen_then_rejected():
    items = [(EncodedPair([1, VIDEO, VIDEO], [5, 6], [7]), media(1.0, 2)),
             (EncodedPair([2, VIDEO], [8], [9, 9, 9]), media(2.0, 1))]
    batch = MediaCollator(PreferenceCollator(0, layout="padded"), copies=2, token_types={VIDEO: 2, IMAGE: 1})(items)
    assert batch["input_ids"].tolist()[0][:5] == [1, VIDEO, VIDEO, 5, 6]
    assert batch["pixel_values_videos"][:, 0].tolist() == [1, 1, 2, 1, 1, 2]  # chosen rows, then rejected rows
    assert batch["video_grid_thw"].tolist() == [[1, 2, 1], [1, 1, 1], [1, 2, 1], [1, 1, 1]]
    assert (batch["mm_token_type_ids"] == 2).sum(1).tolist() == [2, 1, 2, 1]
    assert set(media_inputs(batch)) == {"pixel_values_videos", "video_grid_thw", "mm_token_type_ids"}


def test_text_only_items_mix_with_video_items():
    items = [(([1, 2], [3]), {}), (([VIDEO, 4], [5, 6]), media(3.0, 1))]
    batch = MediaCollator(SFTCollator(0, packed=False), token_types={VIDEO: 2})(items)
    assert batch["pixel_values_videos"].shape == (1, 3) and batch["mm_token_type_ids"].tolist()[0] == [0, 0, 0, 0]
    plain = MediaCollator(SFTCollator(0, packed=False))([(([1, 2], [3]), {})])
    assert media_inputs(plain) == {}


def test_packed_inner_collators_are_refused():
    with pytest.raises(ValueError, match="padding inner collator"):
        MediaCollator(lambda xs: collate_packed(xs))([(([1], [2]), {})])
    with pytest.raises(ValueError, match="copies"):
        MediaCollator(SFTCollator(0), copies=0)
