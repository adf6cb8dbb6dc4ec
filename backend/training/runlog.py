"""A run folder's ``log.jsonl`` and ``loss_curves.png``."""

from __future__ import annotations

import json
from pathlib import Path

from synth_render.atomic import atomic_path, atomic_write_text


class RunLog:
    """``log.jsonl`` (append, one record a line) and the loss-curve figure; rank 0 only."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.path, self.png = run_dir / "log.jsonl", run_dir / "loss_curves.png"
        self.enabled = enabled
        self.records: list[dict] = []

    def restore(self, up_to_step: int) -> None:
        """Keep the records of steps <= ``up_to_step`` (a resumed run redoes the later ones)
        and drop a torn last line from a killed run."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("step", 0) <= up_to_step:
                kept.append(rec)
        self.records = kept
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.records.append(record)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def plot(self) -> None:
        """Refresh ``loss_curves.png`` (training losses, validation IoU, adversary)."""
        if not self.enabled or not self.records:
            return
        # The object API, not pyplot: no global backend switch, no figure registry to leak.
        from matplotlib.figure import Figure

        train = [r for r in self.records if r["kind"] == "train"]
        evals = [r for r in self.records if r["kind"] == "eval"]
        fig = Figure(figsize=(15, 4))
        axes = fig.subplots(1, 3)
        for key in ("loss", "voxel_bce", "voxel_iou", "class_ce", "view_mse", "rec_source",
                    "rec_target", "adv"):
            pts = [(r["step"], r[key]) for r in train if key in r]
            if pts:
                axes[0].plot(*zip(*pts, strict=True), label=key)
        axes[0].set(xlabel="step", ylabel="loss", yscale="log", title="training losses")
        axes[0].legend(fontsize=7)
        if evals:
            axes[1].plot([r["step"] for r in evals], [r["val_iou"] for r in evals], "o-")
        axes[1].set(xlabel="step", ylabel="IoU", title="source_val IoU (best threshold)")
        for key in ("d_acc", "adv_coeff"):
            pts = [(r["step"], r[key]) for r in train if key in r]
            if pts:
                axes[2].plot(*zip(*pts, strict=True), label=key)
        axes[2].set(xlabel="step", title="adversary")
        axes[2].legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(self.png) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
