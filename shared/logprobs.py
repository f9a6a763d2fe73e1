"""Per-sequence log-probs of completions given prompts, padded or packed without padding.

A batch holds (prompt_ids, completion_ids) sequences. Only positions that predict a completion
token are pushed through the LM head: the (tokens, vocab) logits exist for completion tokens
alone, never the full (batch, time, vocab) tensor.

Encoder-decoder models (transformers' `is_encoder_decoder`: T5, Marian, NLLB-MoE) take a
seq2seq batch (`collate_seq2seq`): the prompt is the encoder input and the completion the decoder's
target; there the full decoder logits are computed (completions are short). A mixture-of-experts
model's load-balancing loss (`router_aux_loss_coef` times its aux losses) comes back as
`SequenceLogps.aux_loss` while gradients are on, for a training module to add.

Vision-language models (transformers' Qwen2.5-VL, LLaVA-OneVision, SmolVLM) take a padded batch
that also carries their vision inputs (`MEDIA_KEYS`: pixel values and grids, one entry per sequence
that has a video or image, in batch order; shared.modules.media builds it): the whole model's
backbone (`model.model`, vision tower included) reads them, and the LM head scores as above.

Packing: sequences are bin-packed into rows (by default no longer than the longest sequence),
each row a concatenation with position ids restarting at 0 for each sequence and no attention
mask; transformers then builds a block-diagonal causal mask (sdpa and eager attention;
flash-attention does the same from the position ids), so no sequence attends to another and
almost no compute is spent on padding. Bounding the row length keeps attention, whose cost grows
with the square of the row length, no dearer than in a padded batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Example = tuple[Sequence[int], ...]  # (prompt ids, completion ids) or (prompt ids, completion ids, scored mask)


def _scored(example: Example) -> Tensor:
    """Return the 0/1 mask of the completion tokens that count: all of them, or the example's third element.

    A mask marks tokens inside a completion that the policy did not choose (a simultaneous
    translator's source words, a tool's output) as context: they are read, never scored.
    """
    completion = example[1]
    if len(example) < 3 or example[2] is None:
        return torch.ones(len(completion), dtype=torch.long)
    mask = torch.as_tensor(list(example[2]), dtype=torch.long)
    if mask.numel() != len(completion):
        raise ValueError(f"scored mask has {mask.numel()} entries for a completion of {len(completion)} tokens")
    return mask


@dataclass
class SequenceLogps:
    """Sums of completion-token log-probs per sequence, with completion lengths (both (num_sequences,))."""

    logps: Tensor
    lengths: Tensor
    aux_loss: Tensor | None = None  # a mixture-of-experts model's weighted load-balancing loss (seq2seq batches)

    def average(self) -> Tensor:
        """Return length-normalised log-probs logps / lengths."""
        return self.logps / self.lengths.clamp(min=1)


def collate_padded(examples: Sequence[Example], pad_id: int) -> dict[str, Tensor]:
    """Return a right-padded batch: input_ids, attention_mask and completion_mask, each (batch, time)."""
    width = max(len(e[0]) + len(e[1]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    completion = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        prompt, comp = example[0], example[1]
        n_p, n = len(prompt), len(prompt) + len(comp)
        ids[row, :n] = torch.tensor([*prompt, *comp], dtype=torch.long)
        attention[row, :n] = 1
        completion[row, n_p:n] = _scored(example)
    return {"input_ids": ids, "attention_mask": attention, "completion_mask": completion}


def collate_seq2seq(examples: Sequence[Example], pad_id: int, decoder_start_id: int) -> dict[str, Tensor]:
    """Return an encoder-decoder batch: prompts as encoder input, completions as decoder targets.

    Keys: input_ids and attention_mask (batch, prompt time), right-padded; decoder_input_ids (the
    completion shifted right behind `decoder_start_id`), decoder_attention_mask, decoder_targets and
    completion_mask (batch, completion time); completion_mask is 0 on padding and on unscored tokens.
    """
    enc_width = max(max(len(e[0]) for e in examples), 1)
    dec_width = max(max(len(e[1]) for e in examples), 1)
    ids = torch.full((len(examples), enc_width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), enc_width), dtype=torch.long)
    dec_in = torch.full((len(examples), dec_width), pad_id, dtype=torch.long)
    targets = torch.full((len(examples), dec_width), pad_id, dtype=torch.long)
    dec_attention = torch.zeros((len(examples), dec_width), dtype=torch.long)
    completion = torch.zeros((len(examples), dec_width), dtype=torch.long)
    for row, example in enumerate(examples):
        prompt, comp = list(example[0]), list(example[1])
        ids[row, :len(prompt)] = torch.tensor(prompt, dtype=torch.long)
        attention[row, :len(prompt)] = 1
        n = len(comp)
        if n:
            targets[row, :n] = torch.tensor(comp, dtype=torch.long)
            dec_in[row, :n] = torch.tensor([decoder_start_id, *comp[:-1]], dtype=torch.long)
            dec_attention[row, :n] = 1
            completion[row, :n] = _scored(example)
    return {"input_ids": ids, "attention_mask": attention, "decoder_input_ids": dec_in,
            "decoder_attention_mask": dec_attention, "decoder_targets": targets, "completion_mask": completion}


def pack_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """Return rows of example indices, first-fit by decreasing length, each row's total <= row_tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for r, free in enumerate(room):
            if lengths[index] <= free:
                rows[r].append(index)
                room[r] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(row_tokens - lengths[index])
    return rows


def collate_packed(examples: Sequence[Example], row_tokens: int | None = None, pad_id: int = 0) -> dict[str, Tensor]:
    """Return a packed batch: input_ids, position_ids, completion_mask and segment_ids, each (rows, time).

    Sequences are bin-packed into rows of at most `row_tokens` tokens (default: the longest
    sequence, so attention never spans more than a padded batch would); position ids restart at
    0 for every sequence, and segment_ids give each token's example index (-1 on row padding).
    `row_tokens=0` puts everything in one row.
    """
    lengths = [len(e[0]) + len(e[1]) for e in examples]
    capacity = sum(lengths) if row_tokens == 0 else max(row_tokens or 0, max(lengths))
    rows = pack_rows(lengths, capacity)
    width = max(sum(lengths[i] for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    completion = torch.zeros((len(rows), width), dtype=torch.long)
    segments = torch.full((len(rows), width), -1, dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for index in row:
            prompt, comp = examples[index][0], examples[index][1]
            n = lengths[index]
            ids[r, start:start + n] = torch.tensor([*prompt, *comp], dtype=torch.long)
            positions[r, start:start + n] = torch.arange(n)
            completion[r, start + len(prompt):start + n] = _scored(examples[index])
            segments[r, start:start + n] = index
            start += n
        positions[r, start:] = torch.arange(width - start)  # padding forms its own segment, never scored
    return {"input_ids": ids, "position_ids": positions, "completion_mask": completion, "segment_ids": segments}


def collate_prefix_groups(groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
                          row_tokens: int | None = None, pad_id: int = 0) -> dict[str, Tensor]:
    """Return a batch where each prompt is computed once for all its completions: blocks [prompt | c_1 | ... | c_k].

    Within a block, each completion's tokens attend to the prompt and to earlier tokens of the same
    completion, never to another completion; position ids restart at the prompt's end for every
    completion, so each completion gets exactly the log-probs it would get alone. Blocks are
    bin-packed into rows like `collate_packed` (default row length: the longest block). The batch
    carries a 4D boolean attention mask and explicit scoring indices, which `sequence_logps` and
    `token_logps` use instead of shifting: `score_from` (the flat row * time + column position
    whose output predicts the token), `score_at` (the token's own position), `score_target` and
    `score_owner` (the sequence index: completions numbered group after group, in order).
    """
    if any(len(prompt) == 0 for prompt, _ in groups):
        raise ValueError("collate_prefix_groups: every group needs a non-empty prompt (use collate_packed)")
    lengths = [len(prompt) + sum(map(len, completions)) for prompt, completions in groups]
    rows = pack_rows(lengths, max(row_tokens or 0, max(lengths)))
    width = max(sum(lengths[i] for i in row) for row in rows)
    first_owner = [0]
    for _, completions in groups:
        first_owner.append(first_owner[-1] + len(completions))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    allowed = torch.zeros((len(rows), width, width), dtype=torch.bool)
    score_from, score_at, score_target, score_owner = [], [], [], []
    for r, row in enumerate(rows):
        start = 0
        for index in row:
            prompt, completions = groups[index]
            p = len(prompt)
            ids[r, start:start + p] = torch.tensor(list(prompt), dtype=torch.long)
            positions[r, start:start + p] = torch.arange(p)
            allowed[r, start:start + p, start:start + p] = torch.ones(p, p, dtype=torch.bool).tril()
            cs, base = start + p, r * width
            for j, completion in enumerate(completions):
                c = len(completion)
                ids[r, cs:cs + c] = torch.tensor(list(completion), dtype=torch.long)
                positions[r, cs:cs + c] = torch.arange(p, p + c)
                allowed[r, cs:cs + c, start:start + p] = True
                allowed[r, cs:cs + c, cs:cs + c] = torch.ones(c, c, dtype=torch.bool).tril()
                score_from.extend([base + start + p - 1, *range(base + cs, base + cs + c - 1)][:c])
                score_at.extend(range(base + cs, base + cs + c))
                score_target.extend(completion)
                score_owner.extend([first_owner[index] + j] * c)
                cs += c
            start = cs
        allowed[r, start:, start:] = torch.eye(width - start, dtype=torch.bool)  # padding attends to itself only
    return {"input_ids": ids, "position_ids": positions, "attention_mask_4d": allowed.unsqueeze(1),
            "score_from": torch.tensor(score_from), "score_at": torch.tensor(score_at),
            "score_target": torch.tensor(score_target, dtype=torch.long),
            "score_owner": torch.tensor(score_owner), "num_sequences": torch.tensor(first_owner[-1])}


def collate_shared_prefix(triples: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int]]],
                          row_tokens: int | None = None, pad_id: int = 0) -> dict[str, Tensor]:
    """Return a batch where each pair's prompt is computed once: blocks [prompt | chosen | rejected].

    `collate_prefix_groups` with two completions per prompt, renumbered as the pair losses expect:
    chosen of pair i is sequence i, rejected is sequence B + i.
    """
    if any(len(p) == 0 for p, _, _ in triples):
        raise ValueError("collate_shared_prefix: every pair needs a non-empty prompt (use collate_packed)")
    batch = collate_prefix_groups([(prompt, (chosen, rejected)) for prompt, chosen, rejected in triples],
                                  row_tokens=row_tokens, pad_id=pad_id)
    owner = batch["score_owner"]
    batch["score_owner"] = torch.where(owner % 2 == 0, owner // 2, len(triples) + owner // 2)
    return batch


MEDIA_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts",
              "mm_token_type_ids")


def media_inputs(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Return the batch's vision inputs (empty for a text-only batch)."""
    return {k: batch[k] for k in MEDIA_KEYS if k in batch}


def _compute_dtype(weight: Tensor) -> torch.dtype:
    """Return the dtype activations have: the autocast dtype inside autocast, else the weights' dtype."""
    device = weight.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype


def _additive_mask(allowed: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn a boolean (rows, 1, T, T) attention mask into the additive float mask transformers expects."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, torch.finfo(dtype).min)


def _backbone_and_head(model: torch.nn.Module, multimodal: bool = False) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Return the decoder stack (with `multimodal`, the whole backbone with its vision tower) and the LM head
    of a causal LM (peft-wrapped or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return (base.model if multimodal else base.get_decoder()), base.get_output_embeddings()


def hidden_states(backbone: torch.nn.Module, batch: dict[str, Tensor], dtype: torch.dtype) -> Tensor:
    """Return the decoder's last hidden states (rows, time, hidden) for a padded, packed or shared-prefix batch."""
    media = media_inputs(batch)
    if media:
        if "attention_mask" not in batch:
            raise ValueError("a batch with vision inputs must be padded (attention_mask), not packed or shared-prefix")
        return backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False,
                        **media).last_hidden_state
    if "attention_mask_4d" in batch:
        kwargs = {"attention_mask": _additive_mask(batch["attention_mask_4d"], dtype), "position_ids": batch["position_ids"]}
    elif "segment_ids" in batch:
        kwargs = {"position_ids": batch["position_ids"]}
    else:
        kwargs = {"attention_mask": batch["attention_mask"]}
    return backbone(input_ids=batch["input_ids"], use_cache=False, **kwargs).last_hidden_state


def last_token_positions(batch: dict[str, Tensor]) -> Tensor:
    """Return the flat (row * time + column) position of each sequence's last token, in sequence order."""
    width = batch["input_ids"].size(1)
    if "score_at" in batch:
        owner, at = batch["score_owner"], batch["score_at"]
        num = int(batch["num_sequences"])
    elif "segment_ids" in batch:
        segments = batch["segment_ids"].reshape(-1)
        real = segments >= 0
        owner, at = segments[real], torch.arange(segments.numel(), device=segments.device)[real]
        num = int(segments.max()) + 1
    else:
        return torch.arange(batch["input_ids"].size(0), device=batch["input_ids"].device) * width + \
            batch["attention_mask"].sum(1) - 1
    return torch.full((num,), -1, dtype=torch.long, device=at.device).scatter_reduce(0, owner, at, reduce="amax")


def _router_aux_loss(model: torch.nn.Module, out) -> Tensor | None:
    """Return coef * load-balancing loss of a mixture-of-experts output (None when the model has none)."""
    coef = getattr(model.config, "router_aux_loss_coef", 0.0)
    aux = getattr(out, "aux_loss", None)
    if aux is None:
        parts = [x for x in (getattr(out, "encoder_aux_loss", None), getattr(out, "decoder_aux_loss", None))
                 if isinstance(x, Tensor)]
        aux = sum(parts) if parts else None
    return None if aux is None or not coef else coef * aux


def _seq2seq_token_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, int, Tensor | None]:
    """Score a collate_seq2seq batch: the encoder reads the prompt, the decoder is teacher-forced on the completion."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    scored = batch["completion_mask"].bool()
    kwargs = {}
    if torch.is_grad_enabled() and getattr(base.config, "router_aux_loss_coef", 0.0):
        # transformers' MoE seq2seq models compute their load-balancing loss only when given labels
        kwargs = {"output_router_logits": True,
                  "labels": batch["decoder_targets"].masked_fill(~batch["decoder_attention_mask"].bool(), -100)}
    out = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
               decoder_input_ids=batch["decoder_input_ids"], decoder_attention_mask=batch["decoder_attention_mask"],
               use_cache=False, **kwargs)
    logits = out.logits[scored].float()
    token_logps = -F.cross_entropy(logits, batch["decoder_targets"][scored], reduction="none")
    owner = torch.arange(scored.size(0), device=scored.device)[:, None].expand_as(scored)[scored]
    return token_logps, owner, scored.size(0), _router_aux_loss(base, out) if kwargs else None


def _completion_token_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, int, Tensor | None]:
    """Return (log-prob of each completion token, its sequence index, number of sequences, MoE aux loss or None)."""
    if "decoder_input_ids" in batch:
        return _seq2seq_token_logps(model, batch)
    backbone, head = _backbone_and_head(model, multimodal=bool(media_inputs(batch)))
    input_ids = batch["input_ids"]
    hidden = hidden_states(backbone, batch, _compute_dtype(head.weight))
    if "score_from" in batch:  # shared-prefix layout: explicit predictor positions
        logits = head(hidden.reshape(-1, hidden.size(-1))[batch["score_from"]]).float()
        token_logps = -F.cross_entropy(logits, batch["score_target"], reduction="none")
        return token_logps, batch["score_owner"], int(batch["num_sequences"]), None
    packed = "segment_ids" in batch
    if packed:
        segments = batch["segment_ids"]
        same_sequence = segments[:, 1:] == segments[:, :-1]
        num_sequences = int(segments.max()) + 1
        owner = segments[:, 1:].clamp(min=0)  # padding (-1) is never scored: completion_mask is 0 there
    else:
        same_sequence = torch.ones_like(input_ids[:, 1:], dtype=torch.bool)
        num_sequences = input_ids.size(0)
        owner = torch.arange(num_sequences, device=input_ids.device)[:, None].expand_as(input_ids[:, 1:])
    scored = batch["completion_mask"][:, 1:].bool() & same_sequence
    logits = head(hidden[:, :-1][scored]).float()  # (completion tokens, vocab) only
    token_logps = -F.cross_entropy(logits, input_ids[:, 1:][scored], reduction="none")
    return token_logps, owner[scored], num_sequences, None


def sequence_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> SequenceLogps:
    """Return per-sequence sums of completion log-probs for a padded or packed batch.

    Sequences are numbered in batch order (packed: by segment id). A completion token is scored
    from the previous position of the same sequence only.
    """
    token_logps, index, num_sequences, aux_loss = _completion_token_logps(model, batch)
    sums = torch.zeros(num_sequences, dtype=token_logps.dtype, device=token_logps.device).index_add(0, index, token_logps)
    lengths = torch.bincount(index, minlength=num_sequences)
    return SequenceLogps(sums, lengths, aux_loss)


def token_logps(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Return (per-token completion log-probs, mask), both (num_sequences, longest completion), left-aligned."""
    values, index, num_sequences, _ = _completion_token_logps(model, batch)
    order = torch.argsort(index, stable=True)  # packed rows hold sequences out of example order
    values, index = values[order], index[order]
    lengths = torch.bincount(index, minlength=num_sequences)
    starts = torch.cumsum(lengths, 0) - lengths
    position = torch.arange(values.numel(), device=values.device) - starts[index]
    width = int(lengths.max()) if num_sequences else 0
    out = values.new_zeros(num_sequences, width).index_put((index, position), values)
    mask = torch.zeros(num_sequences, width, dtype=torch.bool, device=values.device).index_put(
        (index, position), torch.ones_like(index, dtype=torch.bool))
    return out, mask
