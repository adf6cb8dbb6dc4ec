"""The evaluation stage: ``backend eval`` and its metrics reports and galleries,
``backend eval-foreground`` and the retrieval bound."""
