"""Code generation aligned with self-generated tests (DSTC) and Posterior-GRPO."""
