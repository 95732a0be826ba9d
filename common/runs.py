"""What every stage does after training: test once, save, record, plot, report.

A stage's ``__main__`` trains its own network, then hands the result to
``finish``, which evaluates on the test part exactly once, saves the model,
the run record and the plots in a new run folder, and prints the final line
(test accuracy and error rate), then a warning if the run went wrong.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from common import plots
from common.errors import ProjectError
from common.files import usual_mode
from common.records import make_record, run_folder, write_record
from common.training import accuracy, predict, run_warnings


def finish(
    *,
    args,
    stage,
    network,
    data,
    history,
    training_seconds,
    hyperparameters,
    draw=None,
    **extra,
):
    """Evaluate on test, write model, record and plots; return the run folder.

    ``draw(folder)`` draws the stage's own plots (besides learning curves and
    the confusion matrix). ``extra`` goes into the record as given. A folder
    that cannot be written (a full disk, no permission) raises
    ``ProjectError`` and leaves nothing behind. If the network learned
    nothing, or its loss rose, a warning line goes to stderr (see
    ``common.training.run_warnings``): the run is saved all the same, it is
    a real result.
    """
    predictions = predict(network, data.test.images)
    test_accuracy = float(np.mean(predictions == data.test.labels))

    # Everything is written into a hidden folder first, which is renamed to
    # the run's name at the end: a run folder is complete or absent.
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
    except OSError as error:
        raise cannot_save(out, error) from None
    try:
        network.save(partial / "model.npz")
        if not args.no_plots:
            plots.learning_curves(
                history, partial / "learning_curves.png", title=f"{stage}: {network!r}"
            )
            plots.confusion_matrix(
                data.test.labels,
                predictions,
                partial / "confusion_matrix.png",
                class_names=data.class_names,
                title=f"{data.name} test",
            )
            if draw is not None:
                draw(partial)
        record = make_record(
            stage=stage,
            data=data,
            architecture=repr(network),
            parameters=network.parameter_count(),
            hyperparameters=hyperparameters,
            seed=args.seed,
            history=history,
            test_accuracy=test_accuracy,
            training_seconds=training_seconds,
            **extra,
        )
        write_record(partial, record)
        folder = publish(partial, out, data.name, args.seed)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise cannot_save(out, error) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise

    if not args.quiet:
        saved = "model and record" if args.no_plots else "model, record and plots"
        print(f"saved {saved} in {folder}")
    print(
        f"test accuracy {100 * test_accuracy:.2f}%  "
        f"error rate {100 * (1 - test_accuracy):.2f}%  "
        f"({len(data.test):,} {data.name} test images)"
    )
    for warning in run_warnings(
        history,
        accuracy(network, data.validation),
        data.validation.labels,
        hyperparameters["learning_rate"],
        hyperparameters.get("l2") or 0.0,
    ):
        print(warning, file=sys.stderr)
    return folder


def cannot_save(out, error):
    return ProjectError(
        f"could not save the run in {out} ({error.strerror or error}); "
        "nothing was written. Free some space or choose another --out"
    )


def publish(partial, out, dataset, seed):
    """Rename the finished ``partial`` folder to a new run name; return it."""
    while True:
        folder = run_folder(out, dataset, seed)
        try:
            os.rename(partial, folder)
        except OSError:  # another run took the name in the meantime
            if not partial.exists() or not Path(out).is_dir():
                raise
            continue
        folder.chmod(usual_mode(0o777))  # mkdtemp made it private
        return folder
