"""The training stage: ``backend train`` (five modes, DDP, resume, recipes), snapshot
averaging and the foreground model's trainer."""
