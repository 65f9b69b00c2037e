"""The scale-out choices, in a module of their own: the CLI lists them in ``--help`` without importing torch
(`labelwise.train.distributed` checks and applies them)."""

STRATEGIES = ("auto", "ddp", "fsdp")
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
