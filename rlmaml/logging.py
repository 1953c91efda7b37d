"""Run logging: ``metrics.jsonl`` (one JSON line per step), TensorBoard events, and a progress bar.

On resume, lines of ``metrics.jsonl`` past the checkpointed step are dropped and
TensorBoard purges events past it, so a resumed run's logs equal an
uninterrupted run's.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

METRICS_NAME = "metrics.jsonl"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``metrics.jsonl`` (a file or a run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RunLogger:
    """Writes ``metrics.jsonl`` and TensorBoard scalars under ``out_dir``; shows a progress bar.

    ``step_key`` names the counter in each record (``batch`` or ``iteration``);
    ``resume_from`` truncates the logs to records with step < resume_from.
    """

    def __init__(self, out_dir: str | Path, total: int, step_key: str = "iteration",
                 resume_from: int = 0, progress: bool = True, tensorboard: bool = True, desc: str = "train"):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.step_key = step_key
        self.path = self.out_dir / METRICS_NAME
        kept = [r for r in read_metrics(self.path) if r.get(step_key, -1) < resume_from]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._file = self.path.open("a")
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tb"), purge_step=resume_from if resume_from else None)
        self.bar = tqdm(total=total, initial=resume_from, desc=desc, disable=not progress,
                        file=sys.stderr, dynamic_ncols=True)

    def log(self, step: int, metrics: dict[str, Any], postfix: dict[str, Any] | None = None) -> None:
        """Append one record ``{step_key: step, **metrics}`` and advance the bar."""
        record = {self.step_key: step, **{k: _jsonable(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.writer is not None:
            for key, value in record.items():
                if key != self.step_key and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, value, step)
        self.bar.update(1)
        if postfix:
            self.bar.set_postfix({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in postfix.items()})

    def flush(self) -> None:
        self._file.flush()
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.flush()
        self._file.close()
        if self.writer is not None:
            self.writer.close()
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
