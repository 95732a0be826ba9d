"""The cross-stage comparison: its table, its grouping, and a real run."""

import json

import pytest

from common import compare
from common.cli import run


def write_record(
    folder, stage, accuracy, dataset="sample", train=3500, epochs=2, options=""
):
    """A hand-made run record with just what the comparison reads."""
    folder.mkdir(parents=True)
    record = {
        "schema": 1,
        "stage": stage,
        "command": f"python -m {stage} --dataset {dataset} --out x --quiet {options}",
        "created": f"2026-01-0{epochs}T00:00:00+00:00",
        "seed": seed_in(options),
        "dataset": {"name": dataset, "train": train, "validation": 500, "test": 1000},
        "architecture": f"{stage} net",
        "parameters": 1234,
        "epochs": epochs,
        "history": {
            "loss": [1.0] * epochs,
            "train_accuracy": [accuracy] * epochs,
            "validation_accuracy": [accuracy] * epochs,
            "seconds": [0.5] * epochs,
        },
        "test_accuracy": accuracy,
        "training_seconds": 1.0 * epochs,
    }
    (folder / "record.json").write_text(json.dumps(record))


def seed_in(options):
    """The seed a hand-made record's options name, as the stage would read it."""
    words = options.replace("=", " ").split()
    return int(words[words.index("--seed") + 1]) if "--seed" in words else 0


def table_lines(output):
    """The data rows of each printed table: lines that start with a stage."""
    return [line for line in output.splitlines() if line.startswith("stage")]


def test_from_records_gives_one_row_per_stage_in_stage_order(tmp_path, capsys):
    write_record(tmp_path / "stage2_hidden_layer" / "a", "stage2_hidden_layer", 0.9)
    write_record(tmp_path / "stage1_single_neuron" / "a", "stage1_single_neuron", 0.25)

    assert run(compare.main, ["--from-records", "--results", str(tmp_path)]) == 0

    output = capsys.readouterr().out
    rows = table_lines(output)[1:]  # the first is the header
    assert [row.split()[0] for row in rows] == [
        "stage1_single_neuron",
        "stage2_hidden_layer",
    ]
    assert "25.00%" in rows[0] and "75.00%" in rows[0]
    assert "90.00%" in rows[1] and "10.00%" in rows[1]
    assert (tmp_path / "comparison.png").stat().st_size > 0


def test_from_records_takes_the_newest_record_of_a_stage(tmp_path, capsys):
    stage = "stage1_single_neuron"
    write_record(tmp_path / stage / "old", stage, 0.20, epochs=1)
    write_record(tmp_path / stage / "new", stage, 0.30, epochs=2)

    run(compare.main, ["--from-records", "--results", str(tmp_path), "--no-plots"])

    rows = table_lines(capsys.readouterr().out)[1:]
    assert len(rows) == 1 and "30.00%" in rows[0]


def test_from_records_never_mixes_datasets(tmp_path, capsys):
    write_record(tmp_path / "s1" / "a", "stage1_single_neuron", 0.25)
    write_record(tmp_path / "s1" / "b", "stage1_single_neuron", 0.40, "fashion", 50000)
    write_record(tmp_path / "s2" / "a", "stage2_hidden_layer", 0.85, "fashion", 50000)

    run(compare.main, ["--from-records", "--results", str(tmp_path), "--markdown"])

    output = capsys.readouterr().out
    sample, fashion = output.split("### ")[1:]
    assert sample.startswith("sample (3,500 / 500 / 1,000)")
    assert "25.00%" in sample and "40.00%" not in sample and "85.00%" not in sample
    assert fashion.startswith("fashion (50,000 / 500 / 1,000)")
    assert "40.00%" in fashion and "85.00%" in fashion and "25.00%" not in fashion
    assert (tmp_path / "comparison-sample.png").exists()
    assert (tmp_path / "comparison-fashion.png").exists()


def test_runs_with_settings_of_their_own_are_named_under_the_table(tmp_path, capsys):
    options = "--seed=3 --learning-rate 40 --no-plots --epochs 1 --data-dir d"
    write_record(tmp_path / "s1" / "a", "stage1_single_neuron", 0.25)
    write_record(tmp_path / "s2" / "a", "stage2_hidden_layer", 0.1, options=options)
    grow = '--layers 64 --grow "2:widen 1 +8, 3:insert 64" --l2 -1e-3 --seed 4'
    write_record(tmp_path / "s4" / "a", "stage4_dynamic", 0.9, options=grow)

    run(compare.main, ["--from-records", "--results", str(tmp_path), "--no-plots"])

    output = capsys.readouterr().out
    assert output.splitlines()[-3:] == [
        "run with options of their own (as typed; some may be defaults):",
        "- stage2_hidden_layer: --learning-rate 40 --epochs 1",
        "- stage4_dynamic: --layers 64 --grow '2:widen 1 +8, 3:insert 64' --l2 -1e-3",
    ]
    rows = table_lines(output)[1:]
    seeds = [row.split("  ")[0] + " seed " + row.split()[-4] for row in rows]
    assert seeds == [
        "stage1_single_neuron seed 0",
        "stage2_hidden_layer seed 3",
        "stage4_dynamic seed 4",
    ]


def test_a_command_that_could_upset_the_terminal_is_shown_tamed(tmp_path, capsys):
    write_record(tmp_path / "s1" / "a", "stage1_single_neuron", 0.25)
    record_path = tmp_path / "s1" / "a" / "record.json"
    record = json.loads(record_path.read_text())
    record["command"] += " --x \x1b[31mFAKE\x1b[0m\x07" + " --x" * 5000
    record_path.write_text(json.dumps(record))

    run(compare.main, ["--from-records", "--results", str(tmp_path), "--no-plots"])

    note = capsys.readouterr().out.splitlines()[-1]
    assert note.startswith("- stage1_single_neuron: --x '?[31mFAKE?[0m?' --x")
    assert note.isprintable() and len(note) < 300


def test_a_damaged_record_is_reported_and_skipped(tmp_path, capsys):
    write_record(tmp_path / "s1" / "a", "stage1_single_neuron", 0.25)
    damaged = tmp_path / "s2" / "a" / "record.json"
    damaged.parent.mkdir(parents=True)
    damaged.write_text('{"stage": "stage2_hidden_layer", "test_acc')
    not_a_record = tmp_path / "s3" / "a" / "record.json"
    not_a_record.parent.mkdir(parents=True)
    not_a_record.write_text("[1, 2, 3]")

    status = run(compare.main, ["--from-records", "--results", str(tmp_path)])

    captured = capsys.readouterr()
    assert status == 0
    assert len(table_lines(captured.out)) == 2  # header and stage 1
    assert str(damaged) in captured.err and str(not_a_record) in captured.err


def set_created(record, value):
    record["created"] = value


def set_dataset(record, name):
    record["dataset"]["name"] = name


def set_accuracies(record, value):
    record["history"]["validation_accuracy"] = [value] * 2


DAMAGES = {
    "a number for a time": lambda record: set_created(record, 5),
    "no time": lambda record: set_created(record, None),
    "an empty dataset name": lambda record: set_dataset(record, ""),
    "a blank dataset name": lambda record: set_dataset(record, " "),
    "a dataset name that leaves the folder": lambda r: set_dataset(r, "../../../up"),
    "a dataset name too long for a file": lambda record: set_dataset(record, "x" * 300),
    "an accuracy of 1e308": lambda record: set_accuracies(record, 1e308),
    "a negative accuracy": lambda record: set_accuracies(record, -0.5),
}
UNREADABLE = {
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "a 5,000-digit number": '{"stage": ' + "9" * 5000 + "}",
}


@pytest.mark.parametrize("damage", [*DAMAGES, *UNREADABLE])
def test_every_kind_of_damaged_record_is_skipped_with_a_line(tmp_path, capsys, damage):
    """Two good records on another dataset, so the chart names come from the
    dataset names; the damaged one is reported and left out."""
    results = tmp_path / "results"
    write_record(results / "s1" / "a", "stage1_single_neuron", 0.25)
    write_record(results / "s2" / "a", "stage2_hidden_layer", 0.85, "fashion", 50000)
    damaged = results / "s3" / "a" / "record.json"
    if damage in DAMAGES:
        write_record(damaged.parent, "stage3_multilayer", 0.95)
        record = json.loads(damaged.read_text())
        DAMAGES[damage](record)
        damaged.write_text(json.dumps(record))
    else:
        damaged.parent.mkdir(parents=True)
        damaged.write_text(UNREADABLE[damage])

    assert run(compare.main, ["--from-records", "--results", str(results)]) == 0

    captured = capsys.readouterr()
    assert len(table_lines(captured.out)) == 4  # two tables: header and one row
    assert "95.00%" not in captured.out
    skipped = [line for line in captured.err.splitlines() if line.startswith("skip")]
    assert len(skipped) == 1 and str(damaged) in skipped[0]
    assert len(skipped[0]) < 400  # the message quotes a short piece, not it all
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results"]
    charts = sorted(path.name for path in results.glob("*.png"))
    assert charts == ["comparison-fashion.png", "comparison-sample.png"]


def test_from_records_with_no_records_is_a_one_line_error(tmp_path, capsys):
    assert run(compare.main, ["--from-records", "--results", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no run records") and error.count("\n") == 1


def test_one_epoch_of_every_stage_gives_a_four_row_table(tmp_path, capsys):
    status = run(
        compare.main,
        ["--dataset", "sample", "--epochs", "1", "--results", str(tmp_path)],
    )
    assert status == 0

    output = capsys.readouterr().out
    rows = table_lines(output)[1:]
    assert [row.split()[0] for row in rows] == list(compare.STAGES)
    for stage, row in zip(compare.STAGES, rows, strict=True):
        (record_path,) = (tmp_path / stage).glob("*/record.json")
        record = json.loads(record_path.read_text())
        assert record["epochs"] == 1 and record["dataset"]["name"] == "sample"
        assert f"{100 * record['test_accuracy']:.2f}%" in row
    assert (tmp_path / "comparison.png").stat().st_size > 0


def test_a_stage_warning_is_passed_on(tmp_path, capsys, monkeypatch):
    """Each stage runs with its output captured; its warning still shows."""
    warning = "warning: the saved network's validation accuracy, 10.0%, is no better"

    def fake_stage(command, **options):
        stage = command[command.index("-m") + 1]
        out = tmp_path / stage
        write_record(out / "run", stage, 0.1)
        return compare.subprocess.CompletedProcess(command, 0, "", warning + "\n")

    monkeypatch.setattr(compare.subprocess, "run", fake_stage)
    status = run(compare.main, ["--results", str(tmp_path), "--no-plots"])

    assert status == 0
    errors = capsys.readouterr().err.splitlines()
    assert errors == [f"    {stage}: {warning}" for stage in compare.STAGES]


def test_an_interrupted_comparison_says_which_runs_were_saved(
    tmp_path, capsys, monkeypatch
):
    def stage_then_interrupted(command, **options):
        stage = command[command.index("-m") + 1]
        if stage != "stage1_single_neuron":
            raise KeyboardInterrupt
        write_record(tmp_path / stage / "run", stage, 0.3)
        return compare.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(compare.subprocess, "run", stage_then_interrupted)
    status = run(compare.main, ["--results", str(tmp_path), "--no-plots"])

    assert status == 130
    assert capsys.readouterr().err.splitlines() == [
        f"interrupted; the runs of stage1_single_neuron were saved under {tmp_path}, "
        "the rest was not"
    ]
