"""Training stages: losses, the Bradley–Terry trainer (and later SFT, RFT, GRPO)."""
