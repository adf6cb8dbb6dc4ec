"""``python -m backend.train``: the old spelling of ``python -m backend.training`` (the trainer
moved to ``backend/training/``), kept as an alias for one release."""

if __name__ == "__main__":
    from backend.training.cli import main

    raise SystemExit(main())
