r"""kbi-check-servable: would TensorFlow Serving load and run this SavedModel?

  kbi-check-servable --saved_model_dir=saved_models/sst2/1 --server_version=2.10 \
      [--keras_model=sst2.keras]

Checks every op against what the target server links, loads the SavedModel in a clean
process (tensorflow + tensorflow_text only), replays its warmup requests and, given the
Keras model, compares every signature's outputs with it. Exits 1 naming each problem.
"""

import sys

from absl import app, flags

from keras_bert_impl.cli import command

FLAGS = flags.FLAGS


def define_flags():
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "saved_model_dir", None, "A SavedModel directory (one version).", required=True
    )
    flags.DEFINE_string(
        "server_version", None, "Target TF Serving release, e.g. 2.10 (default: any)."
    )
    flags.DEFINE_string(
        "keras_model",
        None,
        "The exported Keras model (.keras): compare every signature.",
    )
    flags.DEFINE_float("atol", 1e-5, "Largest allowed |difference| of float outputs.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from keras_bert_impl.export.check import check_servable
    from keras_bert_impl.export.servability import parse_version

    if FLAGS.server_version is not None:
        try:
            parse_version(FLAGS.server_version)
        except ValueError:
            raise app.UsageError(
                f"--server_version={FLAGS.server_version}: expected a release like 2.10 or 2.4.3"
            ) from None
    try:
        report = check_servable(
            FLAGS.saved_model_dir,
            server_version=FLAGS.server_version,
            keras_model=FLAGS.keras_model,
            atol=FLAGS.atol,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"kbi-check-servable: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


def run():
    command.run(main, define_flags, __name__)
