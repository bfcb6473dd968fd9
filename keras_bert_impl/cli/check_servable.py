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


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "saved_model_dir",
        None,
        "A SavedModel directory (one version).",
        required=True,
        flag_values=f,
    )
    flags.DEFINE_string(
        "server_version",
        None,
        "Target TF Serving release, e.g. 2.10 (default: any).",
        flag_values=f,
    )
    flags.DEFINE_string(
        "keras_model",
        None,
        "The exported Keras model (.keras): compare every signature.",
        flag_values=f,
    )
    flags.DEFINE_float(
        "atol", 1e-5, "Largest allowed |difference| of float outputs.", flag_values=f
    )


def main(flag_values):
    from keras_bert_impl.export.check import check_servable
    from keras_bert_impl.export.servability import parse_version

    if flag_values.server_version is not None:
        try:
            parse_version(flag_values.server_version)
        except ValueError:
            raise app.UsageError(
                f"--server_version={flag_values.server_version}: expected a release like 2.10 or 2.4.3"
            ) from None
    try:
        report = check_servable(
            flag_values.saved_model_dir,
            server_version=flag_values.server_version,
            keras_model=flag_values.keras_model,
            atol=flag_values.atol,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"kbi-check-servable: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0 if report.ok else 1


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
