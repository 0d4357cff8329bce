"""Self-supervised training: model assembly, LR schedules, statistics, the trainer."""
