"""The MLLM baseline track: a VLM answering in text, trained with GRPO-family RL against the same verifiers."""
