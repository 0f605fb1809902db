"""loglytics: streaming log analysis with Faust, template mining, and tier-aware LLM detection."""
