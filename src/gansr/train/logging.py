"""Run logs: JSONL (the source of truth), CSV (for spreadsheets), optional TensorBoard, progress bar.

Every record is a flat dict with an ``event`` (``train``, ``val``, ``note``, ...) and the
iteration ``it`` (1-based: the number of iterations done). ``log.jsonl`` gets one line per record,
flushed at once, so a killed run loses at most a half-written last line, which :class:`RunLogger`
drops on resume together with records newer than the checkpoint it resumes from.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gansr.data.io import atomic_write

JSONL_NAME = "log.jsonl"
CSV_NAME = "log.csv"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a ``log.jsonl``; an unparsable (torn) line is skipped."""
    records = []
    if not Path(path).is_file():
        return records
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no nan/inf; keep them visible as strings
    return value


class RunLogger:
    """Writes ``log.jsonl`` / ``log.csv`` (and TensorBoard scalars) in a run folder.

    Args:
        run_dir: the run folder.
        enabled: False on non-zero DDP ranks: nothing is written or printed.
        quiet: no progress bar and no printed notes (notes still go to the log).
        tensorboard: True/False, or None to use it when the package is installed.
    """

    def __init__(
        self, run_dir: Path, *, enabled: bool = True, quiet: bool = False, tensorboard: bool | None = None
    ):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.quiet = quiet
        self.records: list[dict[str, Any]] = []
        self._csv_fields: list[str] = []
        self._bar: tqdm | None = None
        self._tb = None
        if enabled and tensorboard is not False and _tensorboard_available():
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        elif enabled and tensorboard:
            self.note("tensorboard requested but the 'tensorboard' package is not installed; skipping it")

    @property
    def jsonl_path(self) -> Path:
        return self.run_dir / JSONL_NAME

    @property
    def csv_path(self) -> Path:
        return self.run_dir / CSV_NAME

    # ---- resume -------------------------------------------------------------------------------
    def resume(self, iteration: int) -> None:
        """Keep the records up to ``iteration`` (the checkpoint's) and rewrite both files."""
        if not self.enabled:
            return
        kept = [r for r in read_jsonl(self.jsonl_path) if int(r.get("it", 0)) <= iteration]
        self.records = kept
        with atomic_write(self.jsonl_path) as fh:
            fh.write("".join(json.dumps(record) + "\n" for record in kept).encode("utf-8"))
        self._rewrite_csv()

    # ---- writing ------------------------------------------------------------------------------
    def log(self, record: dict[str, Any]) -> None:
        """Append one record to every sink."""
        if not self.enabled:
            return
        record = {k: _jsonable(v) for k, v in record.items()}
        self.records.append(record)
        with open(self.jsonl_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if set(record) <= set(self._csv_fields) and self.csv_path.is_file():
            with open(self.csv_path, "a", encoding="utf-8", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self._csv_fields).writerow(record)
        else:  # a new column: rewrite with the wider header (rare: phase changes, first val)
            self._rewrite_csv()
        if self._tb is not None and "it" in record:
            prefix = record.get("event", "train")
            for key, value in record.items():
                if (
                    key not in ("it", "event")
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    self._tb.add_scalar(f"{prefix}/{key}", value, int(record["it"]))

    def _rewrite_csv(self) -> None:
        fields: list[str] = []
        for record in self.records:
            fields.extend(k for k in record if k not in fields)
        self._csv_fields = fields
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.records)
        with atomic_write(self.csv_path) as fh:
            fh.write(text.getvalue().encode("utf-8"))

    def note(self, message: str, *, it: int | None = None) -> None:
        """A one-line message for the user: logged as a ``note`` record and printed unless quiet."""
        if not self.enabled:
            return
        record: dict[str, Any] = {"event": "note", "message": message}
        if it is not None:
            record["it"] = it
        self.log(record)
        if not self.quiet:
            self.write(f"gansr: {message}")

    def write(self, line: str) -> None:
        """Print a line without breaking the progress bar."""
        if self.enabled:
            tqdm.write(line, file=sys.stderr)

    # ---- progress -----------------------------------------------------------------------------
    def start_progress(self, start: int, total: int) -> None:
        """Show a tqdm bar (ETA, it/s) unless quiet or not the main process."""
        if self.enabled and not self.quiet:
            self._bar = tqdm(
                total=total, initial=start, desc="train", unit="it", dynamic_ncols=True, file=sys.stderr
            )

    def advance(self, postfix: dict[str, float] | None = None) -> None:
        """One iteration done; ``postfix`` holds running losses to display."""
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
            self._bar.update()

    def close(self) -> None:
        """Close the progress bar and TensorBoard writer."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None
