"""Temporal preference alignment of a video LLM (TEMPLE) on transformers' Qwen2.5-VL: docs/apps/videollm.md."""
