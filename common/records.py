"""One JSON record per training run, and reading them back.

A record holds everything needed to compare runs and to reproduce one: the
stage, the data and its sizes, the architecture and parameter count, the
hyper-parameters and seed, the per-epoch history, the test accuracy, the
training time, the command, the machine and the library versions.

Runs live in ``results/<stage>/<run>/`` with ``record.json`` beside the
model and the plots of that run, so nothing of one run overwrites another.
"""

import json
import math
import os
import platform
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from common.errors import shortened
from common.files import write_text

SCHEMA = 1
RECORD = "record.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
REQUIRED = (
    "stage",
    "dataset",
    "architecture",
    "parameters",
    "history",
    "test_accuracy",
)


def run_folder(out, dataset, seed):
    """A new, empty folder name for one run: ``out/<time>-<dataset>-seed<seed>``.

    Only the name is chosen here; ``common.runs.finish`` fills a temporary
    folder and renames it to this name when everything is written.
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(out) / f"{stamp}-{dataset}-seed{seed}"
    folder, number = base, 1
    while folder.exists():
        number += 1
        folder = base.with_name(f"{base.name}-{number}")
    return folder


def make_record(
    *,
    stage,
    data,
    architecture,
    parameters,
    hyperparameters,
    seed,
    history,
    test_accuracy,
    training_seconds,
    **extra,
):
    """The record of one run as a JSON-ready dict; ``extra`` is kept as given."""
    return {
        "schema": SCHEMA,
        "stage": stage,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command(),
        "dataset": {"name": data.name, **data.sizes()},
        "architecture": architecture,
        "parameters": int(parameters),
        "hyperparameters": hyperparameters,
        "seed": seed,
        "history": history.as_dict(),
        "epochs": len(history.loss),
        "test_accuracy": float(test_accuracy),
        "training_seconds": round(float(training_seconds), 3),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
        **extra,
    }


def command():
    """The command line that started this run (``python -m ...``), quoted
    as a shell needs it, so that it can be pasted back and split again."""
    return shlex.join([Path(sys.orig_argv[0]).name, *sys.orig_argv[1:]])


def versions():
    """Versions of Python and the libraries that can change a result."""
    import matplotlib

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
    }


def write_record(folder, record):
    """Write ``record`` as ``folder/record.json``, whole or not at all."""
    path = Path(folder) / RECORD
    write_text(path, json.dumps(record, indent=2, default=to_builtin) + "\n")
    return path


def to_builtin(value):
    """json.dumps fallback: NumPy numbers and paths as plain values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be written to a run record")


def read_records(root):
    """All readable records under ``root``, oldest first, and the problems.

    Returns ``(records, problems)``: each record gains a ``"path"`` key; a
    file that is not valid JSON or lacks a required field becomes one line
    in ``problems`` instead of stopping the whole read.
    """
    records, problems = [], []
    for path in sorted(Path(root).glob(f"**/{RECORD}")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as error:
            # ValueError: not JSON, not UTF-8, or an integer of over 4,300
            # digits; RecursionError: arrays nested thousands deep.
            problems.append(f"{path}: not a readable record ({shortened(str(error))})")
            continue
        problem = check_record(record)
        if problem:
            problems.append(f"{path}: not a run record ({problem})")
            continue
        record["path"] = str(path)
        records.append(record)
    records.sort(key=lambda record: record.get("created") or "")
    return records, problems


def check_record(record):
    """What is wrong with a record read from a file, or None if nothing."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    history = record["history"]
    checks = {
        "stage": isinstance(record["stage"], str),
        "dataset": isinstance(record["dataset"], dict)
        and is_name(record["dataset"].get("name")),
        "created": isinstance(record.get("created", ""), str),
        "command": isinstance(record.get("command", ""), str),
        "seed": type(record.get("seed", 0)) is int and record.get("seed", 0) >= 0,
        "parameters": is_number(record["parameters"]) and record["parameters"] >= 0,
        "test_accuracy": is_number(record["test_accuracy"])
        and 0 <= record["test_accuracy"] <= 1,
        "training_seconds": is_number(record.get("training_seconds", 0)),
        "history": isinstance(history, dict)
        and all(
            isinstance(history.get(key), list) and all(map(is_number, history[key]))
            for key in ("loss", "validation_accuracy")
        )
        and all(0 <= value <= 1 for value in history["validation_accuracy"]),
    }
    wrong = [key for key, good in checks.items() if not good]
    return f"bad {', '.join(wrong)}" if wrong else None


def is_name(value):
    """A dataset name as the stages write them (``sample``, ``mnist``...): it
    names a chart file, so nothing that could leave the results folder."""
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def is_number(value):
    """A finite int or float (not a bool, which JSON keeps apart)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
