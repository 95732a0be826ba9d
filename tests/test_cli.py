"""Tests of common/cli.py: options every command shares, and their errors.

A mistake on the command line ends in one line on stderr and exit status 2,
whatever the option and however its number is written; running out of
memory ends in one line too; a folder that cannot be written is refused
before any training.
"""

import argparse
import math
import os
import signal
from pathlib import Path

import pytest

from common import cli, compare, plots
from common.cli import run
from common.errors import ProjectError
from stage1_single_neuron import __main__ as stage1
from stage2_hidden_layer import __main__ as stage2
from stage3_multilayer import __main__ as stage3
from stage4_dynamic import __main__ as stage4

NOTATIONS = ("-1e-3", "-.5", "-1E+2", "-inf", "-nan")
COMMON = {
    "--epochs": "whole >= 1",
    "--batch-size": "whole >= 1",
    "--learning-rate": "> 0",
    "--seed": "whole >= 0",
}
NUMERIC_OPTIONS = {
    "stage1": (stage1.main, COMMON),
    "stage2": (stage2.main, {**COMMON, "--hidden": "whole >= 1"}),
    "stage3": (stage3.main, {**COMMON, "--momentum": "[0, 1)", "--l2": ">= 0"}),
    "stage4": (
        stage4.main,
        {
            **COMMON,
            "--momentum": "[0, 1)",
            "--l2": ">= 0",
            "--shift": "whole >= 0",
            "--patience": "whole >= 1",
            "--max-parameters": "whole >= 1",
        },
    ),
    "compare": (compare.main, {"--seed": "whole >= 0", "--epochs": "whole >= 1"}),
}


def expected_message(option, kind, value):
    """What the parser must say about ``option value``, a negative number."""
    number = float(value)
    whole = kind.startswith("whole")
    if math.isnan(number) and whole:
        return f"argument {option}: '{value}' is not a whole number"
    if not math.isfinite(number) and not whole:
        return f"argument {option}: {value} is not a finite number"
    return {
        "whole >= 1": f"argument {option}: {value} must be at least 1",
        "whole >= 0": f"argument {option}: {value} must not be negative",
        "> 0": f"argument {option}: {value} must be above 0",
        ">= 0": f"argument {option}: {value} must not be negative",
        "[0, 1)": f"argument {option}: {value} must be at least 0 and below 1",
    }[kind]


def refusal(main, argv, capsys):
    """(exit status, the one line on stderr) of a command the parser refuses."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return stopped.value.code, lines[0]


@pytest.mark.parametrize("value", NOTATIONS)
@pytest.mark.parametrize(
    ("command", "option", "kind"),
    [
        (command, option, kind)
        for command, (_, options) in NUMERIC_OPTIONS.items()
        for option, kind in options.items()
    ],
)
def test_a_negative_number_in_any_notation_gets_the_range_message(
    command, option, kind, value, capsys
):
    """``--learning-rate -1e-3`` used to end in "expected one argument":
    argparse takes -1e-3 for an option. Now every numeric option of every
    command says what ``--learning-rate=-1e-3`` says."""
    main = NUMERIC_OPTIONS[command][0]
    status, line = refusal(main, [option, value], capsys)
    assert status == 2
    assert line.startswith(f"error: {expected_message(option, kind, value)}; see ")
    assert line.endswith(" --help")

    # the same words as the documented spelling with "="
    assert refusal(main, [f"{option}={value}"], capsys) == (status, line)


def test_a_negative_number_is_attached_only_to_the_long_option_before_it():
    words = ["--l2", "-1e-3", "--quiet", "-x", "--epochs", "3", "--", "--seed", "-5"]
    assert cli.attach_negative_numbers(words) == [
        "--l2=-1e-3",
        "--quiet",
        "-x",
        "--epochs",
        "3",
        "--",
        "--seed",
        "-5",
    ]
    assert cli.attach_negative_numbers(["--data-dir", "-folder"]) == [
        "--data-dir",
        "-folder",
    ]


@pytest.mark.parametrize("main", [stage1.main, compare.main])
def test_an_empty_data_folder_is_refused_not_taken_for_the_current_one(main, capsys):
    """--data-dir "" was Path(""), the current folder: --dataset mnist would
    have downloaded into it."""
    status, line = refusal(main, ["--data-dir", "", "--dataset", "mnist"], capsys)
    assert status == 2
    assert line.startswith("error: argument --data-dir: an empty path is not a folder")


def test_a_refused_option_is_one_line_naming_the_help(capsys):
    status, line = refusal(stage1.main, ["--epochs", "0"], capsys)
    assert status == 2
    assert line == (
        "error: argument --epochs: 0 must be at least 1; "
        "see python -m stage1_single_neuron --help"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1e3", "'1e3' is not a whole number written in digits; write 1000"),
        ("2.0", "'2.0' is not a whole number written in digits; write 2"),
        ("2.5", "'2.5' is not a whole number"),
        ("-2.5", "-2.5 must be at least 1"),
        ("inf", "'inf' is not a whole number"),
        ("many", "'many' is not a whole number"),
        ("", "'' is not a whole number"),
        (
            "9" * 5000,
            "'99999999999999999999...9999999999' has 5,000 digits: far out of range",
        ),
        ("-" + "1" * 5000, "-1111111111111111111...1111111111 must be at least 1"),
    ],
    ids=[
        "1e3",
        "2.0",
        "2.5",
        "-2.5",
        "inf",
        "many",
        "empty",
        "5000 digits",
        "-1111...",
    ],
)
def test_whole_numbers_written_otherwise_say_what_to_write(text, message):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        cli.positive_int(text)
    assert str(refused.value).startswith(message)
    assert len(str(refused.value)) < 100


def test_whole_numbers_in_digits_are_read():
    assert cli.positive_int(" 12 ") == 12
    assert cli.non_negative_int("0") == 0
    assert cli.positive_int("1_000") == 1000


def test_layer_widths_of_thousands_of_digits_say_so():
    """int() refuses more than 4,300 digits; argparse used to answer
    "invalid layer_sizes value" with all of them."""
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        cli.layer_widths("64," + "9" * 5000)
    assert str(refused.value) == (
        "'99999999999999999999...9999999999' has 5,000 digits: far out of range"
    )


# ------------------------------------------------------------ network sizes


def test_memory_is_written_in_the_unit_that_fits():
    assert cli.memory(10) == "40 bytes"
    assert cli.memory(79_510) == "318 kB"
    assert cli.memory(cli.PARAMETER_BUDGET) == "400 MB"
    assert cli.memory(795_000_000_000_010) == "3.2 PB"
    assert cli.memory(10**4300) == "4.0e+4300 bytes"  # no float overflow


def test_the_size_limits_are_the_widest_layer_and_the_parameter_count():
    widest = [784, cli.MAX_WIDTH, 10]
    assert cli.network_size_problem(widest, "it") is None
    too_wide = [784, cli.MAX_WIDTH + 1, 10]
    assert cli.network_size_problem(too_wide, "it").startswith(
        "it would have 79,500,805 parameters, 318 MB of weights; at most "
        "100,000 neurons in a layer and 100,000,000 parameters"
    )
    # 784 -> 10,000 -> 9,000 -> 10: 7.85 M + 90.01 M + 0.09 M = 97.9 M: fits
    assert cli.network_size_problem([784, 10_000, 9_000, 10], "it") is None
    assert "100,952,310 parameters, 404 MB" in cli.network_size_problem(
        [784, 10_000, 9_300, 10], "it"
    )


def fail_if_called(*args, **kwargs):
    raise AssertionError("a network was allocated")


def test_a_hidden_layer_too_large_for_memory_is_refused_before_allocation(
    monkeypatch, capsys
):
    monkeypatch.setattr(stage2, "HiddenLayerNetwork", fail_if_called)
    argv = ["--hidden", "1000000000000", "--dataset", "sample"]
    status, line = refusal(stage2.main, argv, capsys)
    assert status == 2
    assert line.startswith(
        "error: argument --hidden: a hidden layer of 1,000,000,000,000 neurons "
        "would have 795,000,000,000,010 parameters, 3.2 PB of weights; "
        "at most 100,000 neurons in a layer and 100,000,000 parameters "
        "(400 MB of weights) in all"
    )
    # the bound itself is accepted
    assert stage2.build_parser().parse_args(["--hidden", "100000"]).hidden == 100_000


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            "100000,100000",
            "'100000,100000' would have 10,079,600,010 parameters, 40 GB",
        ),
        ("1000000000000", "'1000000000000' would have 795,000,000,000,010 parameters"),
        ("64,1000000", "'64,1000000' would have 75,050,250 parameters, 300 MB"),
        (
            ",".join(["1"] * 101),
            "'1,1,1,1,1,1,1,1,1,1,...,1,1,1,1,1' would have 101 "
            "hidden layers; at most 100 can be trained in a useful time",
        ),
    ],
)
def test_stage3_layers_too_large_for_memory_are_refused(layers, message, capsys):
    status, line = refusal(stage3.main, ["--layers", layers], capsys)
    assert status == 2
    assert line.startswith(f"error: argument --layers: {message}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--layers", "1000000000000"],
            "argument --layers: '1000000000000' would have 795,000,000,000,010 "
            "parameters, 3.2 PB of weights",
        ),
        (
            ["--grow", "1:widen 1 +1000000000000"],
            "--grow: after step 1 of 1 (1:widen 1 +1000000000000) the network would "
            "have 795,000,000,203,530 parameters, 3.2 PB of weights",
        ),
        (
            # 784, 2000 x 25, 256, 10: 98.1 M parameters; one more 2000 x 2000
            ["--grow", ", ".join(["1:insert 2000 at 1"] * 40)],
            "--grow: after step 26 of 40 (1:insert 2000 at 1) the network would "
            "have 102,134,826 parameters, 409 MB of weights",
        ),
        (
            # the default --layers 256 and 99 more make the hundredth hidden layer
            ["--grow", ", ".join(["1:insert 784 at 1"] * 200)],
            "--grow: after step 100 of 200 (1:insert 784 at 1) the network would "
            "have 101 hidden layers; at most 100 can be trained in a useful time",
        ),
        (
            ["--grow", "1:insert 1000000000000 at 1"],
            "--grow: after step 1 of 1 (1:insert 1000000000000 at 1) the network",
        ),
        (
            ["--max-parameters", "1000000000000"],
            "argument --max-parameters: 1,000,000,000,000 parameters would take "
            "4.0 TB of weights; at most 100,000,000 (400 MB)",
        ),
    ],
)
def test_stage4_sizes_too_large_for_memory_are_refused_before_allocation(
    argv, message, monkeypatch, capsys
):
    monkeypatch.setattr(stage4, "DynamicNetwork", fail_if_called)
    status, line = refusal(stage4.main, [*argv, "--dataset", "sample"], capsys)
    assert status == 2
    assert line.startswith(f"error: {message}")


def test_a_hundred_hidden_layers_is_the_deepest_network():
    sizes = (1,) * cli.MAX_HIDDEN_LAYERS
    assert (
        stage3.build_parser().parse_args(["--layers", ",".join(map(str, sizes))]).layers
        == sizes
    )


@pytest.mark.parametrize("main", [stage1.main, compare.main])
def test_a_seed_is_at_most_32_bits(main, capsys):
    status, line = refusal(main, ["--seed", "4294967296"], capsys)
    assert status == 2
    assert line.startswith(
        "error: argument --seed: 4,294,967,296 is too large: at most 4,294,967,295"
    )
    assert stage1.build_parser().parse_args(["--seed", "4294967295"]).seed == 2**32 - 1


def test_stage4_max_parameters_goes_up_to_the_budget():
    args = stage4.build_parser().parse_args(["--max-parameters", "100000000"])
    assert args.max_parameters == cli.PARAMETER_BUDGET


class Shape:
    """What automatic_steps looks at: a network's sizes, nothing allocated."""

    def __init__(self, sizes, activation="relu"):
        self.sizes, self.activation = list(sizes), activation
        self.hidden = self.sizes[1:-1]


def test_auto_growth_counts_without_building_and_keeps_to_the_limits(monkeypatch):
    monkeypatch.setattr(stage4, "DynamicNetwork", fail_if_called)
    small = Shape([784, 16, 10])
    assert [str(s) for s in stage4.automatic_steps(small, 3, True, 10**6)] == [
        "widen 1 +8"
    ]
    # a layer of 24 would be over a width limit of 20: deepen instead
    monkeypatch.setattr(cli, "MAX_WIDTH", 20)
    assert [str(s) for s in stage4.automatic_steps(small, 3, True, 10**6)] == [
        "insert 16"
    ]
    assert stage4.automatic_steps(Shape([784, 20, 10]), 3, True, 10**6) == (
        stage4.GrowthStep(3, "insert", None, 20),
    )


# ------------------------------------------------------------- last resorts


def test_running_out_of_memory_is_one_line(capsys):
    def main(argv):
        raise MemoryError(
            "Unable to allocate 74.5 GiB for an array with shape (100000, 100000) "
            "and data type float64"
        )

    assert run(main, []) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: not enough memory (unable to allocate 74.5 GiB for an array with "
        "shape (100000, 100000) and data type float64); try a smaller network "
        "(--hidden, --layers, --grow) or a smaller --batch-size"
    ]


def test_a_bare_memory_error_is_one_line_too(capsys):
    def main(argv):
        raise MemoryError

    assert run(main, []) == 1
    assert capsys.readouterr().err.startswith("error: not enough memory; try ")


UNWRITABLE = Path("/proc/no-such-folder/runs")  # /proc takes no new folders


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_an_output_folder_that_cannot_be_written_is_refused_before_training(
    monkeypatch, capsys
):
    def no_data(*args, **kwargs):
        raise AssertionError("the data were loaded")

    monkeypatch.setattr(stage2, "load", no_data)
    assert run(stage2.main, ["--dataset", "sample", "--out", str(UNWRITABLE)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot write in {UNWRITABLE} (")
    assert lines[0].endswith("); choose another --out")


def test_check_writable_accepts_a_folder_yet_to_be_made(tmp_path):
    cli.check_writable(tmp_path / "a" / "b", "--out")
    assert list(tmp_path.iterdir()) == []  # it tried, and left nothing
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ProjectError, match="choose another --show"):
        cli.check_writable(file / "inside", "--show")  # no folder in a file


def test_a_path_the_system_refuses_is_one_line(capsys):
    def main(argv):
        raise PermissionError(13, "Permission denied", "/root/runs")

    assert run(main, []) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: cannot use /root/runs: permission denied"
    ]


def test_an_output_name_too_long_for_the_system_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(stage2, "load", fail_if_called)
    assert run(stage2.main, ["--dataset", "sample", "--out", "x" * 300]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot use xxxxxxxx")
    assert lines[0].endswith(": file name too long")


def test_a_termination_signal_is_an_interruption_and_leaves_no_run(
    tmp_path, monkeypatch, capsys
):
    """``kill`` (SIGTERM) while the plots are drawn: the half-written run folder
    is removed as for Ctrl-C, and the usual handler is back afterwards."""

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(plots, "learning_curves", killed)
    before = signal.getsignal(signal.SIGTERM)
    argv = ["--dataset", "sample", "--epochs", "1", "--hidden", "4", "--quiet"]
    assert run(stage2.main, [*argv, "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err.splitlines() == ["interrupted; nothing was saved"]
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == before
