"""Caption a video or answer a question about it with a trained video LLM; serve it over HTTP.

    python -m apps.videollm.infer --model runs/videollm/temple --video clip.mp4
    python -m apps.videollm.infer --model runs/videollm/temple --video clip.mp4 --question "What happens first?"
    python -m apps.videollm.infer serve --model runs/videollm/temple --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["{\\"video_mp4_base64\\": \\"AAAA...\\", \\"question\\": \\"What happens last?\\"}"]}'

--model is a training run folder (its final_model.json names TEMPLE's model of the first train seed;
--which picks another of the run's models: base, sft, sft_then_dpo, dpo_no_curriculum) or a saved
model folder. --video is any file PyAV reads (MP4, WebM, GIF, ...) or a .npy frame array. Over
HTTP each prompt is a JSON object {"video_mp4_base64": ..., "question": ...} (question optional:
the caption prompt by default) and each output {"answer", "question", "frames"}; a prompt whose
video cannot be read is answered 422 with the reason. The server has /health and /generate only:
OpenAI's chat API has no video input.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from apps.videollm.generation import generate_answers
from apps.videollm.model import VideoLLMSpec, VideoProcessor, load_video_llm
from apps.videollm.questions import CAPTION_PROMPT
from shared.kit import fail
from shared.models import LoraSpec
from shared.serving.cli import infer_parser, serve, serve_kwargs
from shared.serving.protocol import Param
from shared.video_io import VideoReadError, read_video

PROG = "python -m apps.videollm.infer"


def resolve(model: str, which: str | None) -> Path:
    """Return the model folder of a run folder (final_model.json / models.json) or a saved model folder."""
    folder = Path(model)
    if (folder / "models.json").is_file():
        if which:
            models = json.loads((folder / "models.json").read_text())
            if which not in models:
                raise ValueError(f"{model}: the run has no model {which!r} (has: {', '.join(models)})")
            return Path(next(iter(models[which].values())))
        return Path(json.loads((folder / "final_model.json").read_text())["path"])
    if which:
        raise ValueError("--which needs a training run folder")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{model}: neither a training run folder nor a saved model folder")
    return folder


def decode_video(data: str) -> np.ndarray:
    """Return the frames of a base64 MP4 (or any container PyAV reads); VideoReadError with one line otherwise."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise VideoReadError("video_mp4_base64: not base64") from None
    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(raw)
        f.flush()
        try:
            return read_video(f.name)
        except VideoReadError as exc:
            raise VideoReadError("video_mp4_base64: " + str(exc).removeprefix(f.name + ": ")) from None


def parse_prompt(prompt: str) -> tuple[str, np.ndarray]:
    """Return (question, frames) of a served prompt; ValueError with a one-line reason."""
    try:
        body = json.loads(prompt)
    except json.JSONDecodeError:
        raise ValueError('expected a JSON object {"video_mp4_base64": ..., "question": ...}') from None
    if not isinstance(body, dict) or not isinstance(body.get("video_mp4_base64"), str):
        raise ValueError("video_mp4_base64: required (a base64 string)")
    question = body.get("question", CAPTION_PROMPT)
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question: expected a non-empty string")
    return question, decode_video(body["video_mp4_base64"])


class VideoLLMGenerator:
    """Serves a video LLM: greedy answers to (video, question) prompts."""

    accepted_params = {"max_new_tokens": Param(int, 1, 512)}

    def __init__(self, model, processor: VideoProcessor, max_new_tokens: int = 96):
        self.model, self.processor, self.max_new_tokens = model, processor, max_new_tokens
        self.name = "videollm"

    def check_prompt(self, prompt: str) -> None:
        parse_prompt(prompt)

    def answer(self, items: list[tuple[str, np.ndarray]], max_new_tokens: int | None = None) -> list[dict[str, Any]]:
        texts = generate_answers(self.model, self.processor, items, max_new_tokens or self.max_new_tokens)
        return [{"answer": t, "question": q, "frames": int(f.shape[0])} for (q, f), t in zip(items, texts)]

    def generate(self, prompts: list[str], max_new_tokens: int | None = None) -> list[dict[str, Any]]:
        return self.answer([parse_prompt(p) for p in prompts], max_new_tokens)


def main(argv: list[str] | None = None) -> None:
    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv), text=False)
    parser.add_argument("--which", help="which of the run's models (default: its final model)")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    if not serving:
        parser.add_argument("--video", type=Path, required=True, help="a video file (MP4, WebM, GIF, ...) or .npy frames")
        parser.add_argument("--question", default=CAPTION_PROMPT, help="default: the caption prompt")
    args = parser.parse_args(rest)
    try:
        folder = resolve(args.model, args.which)
        frames = None if serving else read_video(args.video)
    except ValueError as exc:  # VideoReadError is a ValueError
        fail(PROG, exc)
    model, processor = load_video_llm(VideoLLMSpec(source="hf", path=str(folder), lora=LoraSpec(r=0)))
    generator = VideoLLMGenerator(model, processor, args.max_new_tokens)
    if serving:
        serve(generator, **serve_kwargs(args))
        return
    print(json.dumps(generator.answer([(args.question, frames)])[0]))


if __name__ == "__main__":
    main()
