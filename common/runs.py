"""What every stage does after training: test once, save, record, plot, report.

A stage's ``__main__`` trains its own network, then hands the result to
``finish``, which evaluates on the test part exactly once, saves the model,
the run record and the plots in a new run folder, and prints the final line
(test accuracy and error rate).
"""

import numpy as np

from common import plots
from common.records import make_record, run_folder, write_record
from common.training import predict


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
    the confusion matrix). ``extra`` goes into the record as given.
    """
    predictions = predict(network, data.test.images)
    test_accuracy = float(np.mean(predictions == data.test.labels))

    folder = run_folder(args.out, data.name, args.seed)
    network.save(folder / "model.npz")
    if not args.no_plots:
        plots.learning_curves(
            history, folder / "learning_curves.png", title=f"{stage}: {network!r}"
        )
        plots.confusion_matrix(
            data.test.labels,
            predictions,
            folder / "confusion_matrix.png",
            class_names=data.class_names,
            title=f"{data.name} test",
        )
        if draw is not None:
            draw(folder)
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
    write_record(folder, record)

    if not args.quiet:
        print(f"saved model, record and plots in {folder}")
    print(
        f"test accuracy {100 * test_accuracy:.2f}%  "
        f"error rate {100 * (1 - test_accuracy):.2f}%  "
        f"({len(data.test):,} {data.name} test images)"
    )
    return folder
