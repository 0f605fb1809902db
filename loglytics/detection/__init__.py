"""Detection: deterministic signals, findings from them, and LLM judgement once per pattern."""
