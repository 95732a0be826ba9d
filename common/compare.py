"""python -m common.compare: train every stage, then compare them side by side.

Each stage runs as its own process, exactly as a learner would start it,
with the same data and seed; its run record is then read back, and a table
(stage, architecture, parameters, epochs, seconds, test accuracy, error
rate) and a chart (test accuracy per stage, validation accuracy per epoch)
are made from the records. ``--from-records`` skips training and uses the
records already under ``results/``, the newest of each stage, grouped by
dataset so that numbers measured on different data never share a table.
"""

import shlex
import subprocess
import sys
import time
from pathlib import Path

from common.cli import (
    RESULTS,
    ArgumentParser,
    folder_path,
    output_folder,
    positive_int,
    run,
    seed,
)
from common.data import DATASETS
from common.errors import LONGEST_DESCRIBED, ProjectError, shortened
from common.plots import stage_comparison
from common.records import read_records

STAGES = (
    "stage1_single_neuron",
    "stage2_hidden_layer",
    "stage3_multilayer",
    "stage4_dynamic",
)
ROOT = Path(__file__).resolve().parents[1]
COLUMNS = (
    "stage",
    "architecture",
    "parameters",
    "epochs",
    "seed",
    "seconds",
    "test accuracy",
    "error rate",
)


def build_parser():
    parser = ArgumentParser(
        prog="python -m common.compare",
        description="Train every stage with its defaults on the same data and "
        "seed, then print a table and save a chart; or build them from the "
        "run records already saved (--from-records).",
    )
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="auto",
        help="data for every stage (default: auto: full MNIST if on disk, "
        "else the embedded sample)",
    )
    parser.add_argument(
        "--data-dir",
        type=folder_path,
        default=None,
        metavar="FOLDER",
        help="folder holding the MNIST files (passed to every stage)",
    )
    parser.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="seed for every stage (default: 0)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="override every stage's number of epochs (default: each stage's own)",
    )
    parser.add_argument(
        "--results",
        type=output_folder,
        default=RESULTS,
        metavar="FOLDER",
        help="folder of the stages' run folders and the chart (default: results)",
    )
    parser.add_argument(
        "--from-records",
        action="store_true",
        help="train nothing; compare the newest record of each stage",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the table as Markdown (for the README)",
    )
    parser.add_argument(
        "--no-plots",
        action="store_true",
        help="draw no chart, and no plots in the stages",
    )
    return parser


def train_stages(args):
    """Run each stage as a process; return the record each one wrote.

    Interrupted, it says which stages had finished: their runs are saved."""
    records = []
    try:
        for number, stage in enumerate(STAGES, start=1):
            records.append(train_stage(args, number, stage))
    except KeyboardInterrupt:
        if not records:
            raise
        finished = ", ".join(record["stage"] for record in records)
        raise KeyboardInterrupt(
            f"the runs of {finished} were saved under {args.results}, the rest was not"
        ) from None
    return records


def train_stage(args, number, stage):
    """Run stage ``stage`` (the ``number``-th) as a process; return its record."""
    out = (args.results / stage).resolve()
    command = [
        sys.executable,
        "-m",
        stage,
        "--dataset",
        args.dataset,
        "--seed",
        str(args.seed),
        "--out",
        str(out),
        "--quiet",
    ]
    if args.data_dir is not None:
        command += ["--data-dir", str(Path(args.data_dir).resolve())]
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    if args.no_plots:
        command.append("--no-plots")

    print(f"[{number}/{len(STAGES)}] {stage} ...", end=" ", flush=True)
    before = set(out.glob("*/record.json"))
    started = time.perf_counter()
    finished = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        print("failed")
        lines = (finished.stderr.strip() or finished.stdout.strip()).splitlines()
        reason = lines[-1].removeprefix("error: ") if lines else "no message"
        raise ProjectError(
            f"{stage} stopped with status {finished.returncode}: {reason}"
        )
    new = sorted(set(out.glob("*/record.json")) - before)
    if not new:
        raise ProjectError(f"{stage} finished but wrote no run record in {out}")
    found, problems = read_records(new[-1].parent)
    if problems:
        raise ProjectError(problems[0])
    record = found[0]
    print(
        f"{100 * record['test_accuracy']:.1f}% in {time.perf_counter() - started:.0f} s"
    )
    # A stage's warnings (a run that learned nothing) are passed on.
    for line in finished.stderr.splitlines():
        if line.startswith("warning:"):
            print(f"    {stage}: {line}", file=sys.stderr)
    return record


def group_by_dataset(records):
    """{dataset label: newest record of each stage, in stage order}."""
    groups = {}
    for record in records:  # oldest first, so newer ones replace older
        dataset = record["dataset"]  # a dict with a safe name: see check_record
        sizes = [dataset.get(part) for part in ("train", "validation", "test")]
        label = dataset["name"]
        if all(isinstance(size, int) for size in sizes):
            label += " ({:,} / {:,} / {:,})".format(*sizes)
        groups.setdefault(label, {})[record["stage"]] = record
    return {
        label: [by_stage[stage] for stage in sorted(by_stage, key=stage_order)]
        for label, by_stage in groups.items()
    }


def stage_order(stage):
    return (STAGES.index(stage) if stage in STAGES else len(STAGES), stage)


# Options that choose the data and where the run goes, and the seed (a
# column of its own), which a comparison gives every stage alike: all the
# others change what is trained.
SHARED_OPTIONS = {"--dataset", "--data-dir", "--seed", "--out", "--quiet", "--no-plots"}
SWITCHES = {"--quiet", "--no-plots"}  # options without a value


def own_settings(record):
    """The options of a record's command beyond ``SHARED_OPTIONS``, quoted
    as typed (``--learning-rate 40 --grow '8:insert 256'``), or "" for a
    run with none. A damaged command is shown shortened, unprintable
    characters replaced, so that it cannot upset the terminal."""
    text = str(record.get("command", ""))
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes
        words = text.split()
    if "-m" in words:
        words = words[words.index("-m") + 2 :]  # after "python -m stage"
    kept, skip_value = [], False
    for word in words:
        if skip_value and not word.startswith("--"):
            skip_value = False  # the value of the shared option before it
            continue
        name = word.split("=")[0]
        shared = name in SHARED_OPTIONS
        skip_value = shared and "=" not in word and name not in SWITCHES
        if not shared:
            kept.append(word)
    shown = "".join(c if c.isprintable() else "?" for c in shlex.join(kept))
    return shortened(shown, LONGEST_DESCRIBED)


def table_rows(records):
    rows = []
    for record in records:
        accuracy = float(record["test_accuracy"])
        rows.append(
            (
                record["stage"],
                str(record["architecture"]),
                f"{int(record['parameters']):,}",
                str(record.get("epochs", len(record["history"]["loss"]))),
                str(record.get("seed", "?")),
                f"{float(record.get('training_seconds', float('nan'))):.1f}",
                f"{100 * accuracy:.2f}%",
                f"{100 * (1 - accuracy):.2f}%",
            )
        )
    return rows


def format_table(rows, markdown=False):
    """A fixed-width text table, or a Markdown one; the first two columns are
    text (left-aligned), the others numbers (right-aligned)."""
    if markdown:
        rule = ["---"] * 2 + ["---:"] * (len(COLUMNS) - 2)
        lines = [COLUMNS, rule, *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]

    def line(cells):
        aligned = [
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(aligned).rstrip()

    rule = ["-" * width for width in widths]
    return "\n".join(line(cells) for cells in [COLUMNS, rule, *rows])


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.from_records:
        records, problems = read_records(args.results)
        for problem in problems:
            print(f"skipped {problem}", file=sys.stderr)
        if not records:
            found = "no run records"
            if problems:
                found = f"no readable run records ({len(problems)} skipped above)"
            raise ProjectError(
                f"{found} under {args.results}; "
                "run python -m common.compare (without --from-records) first"
            )
    else:
        records = train_stages(args)

    groups = group_by_dataset(records)
    chart_names = []
    for index, (label, group) in enumerate(groups.items()):
        if index:
            print()
        print(f"### {label}" if args.markdown else f"dataset: {label}")
        print()
        print(format_table(table_rows(group), markdown=args.markdown))
        own = [(record["stage"], own_settings(record)) for record in group]
        own = [(stage, settings) for stage, settings in own if settings]
        if own:
            print("\nrun with options of their own (as typed; some may be defaults):")
            for stage, settings in own:
                print(f"- {stage}: {settings}")
        if not args.no_plots:
            name = "comparison.png"
            if len(groups) > 1:
                name = f"comparison-{group[0]['dataset']['name']}.png"
                if name in chart_names:
                    name = name.replace(".png", f"-{index + 1}.png")
            chart_names.append(name)
            stage_comparison(
                group, args.results / name, title=f"Stages compared on {label}"
            )
            print(f"\nchart: {args.results / name}")


if __name__ == "__main__":
    sys.exit(run(main))
