r"""kbi-predict: sends texts to a TF Serving (or kbi-serve) model over gRPC.

  kbi-predict --server=localhost:8500 --model_name=sst2 --text="a gripping film"
  kbi-predict --server=localhost:8500 --model_name=sst2 --input_file=texts.txt \
      --batch_size=64 > predictions.jsonl
  kbi-predict --server=localhost:8500 --model_name=sst2 --metadata

Prints one JSON object per input text (the signature's outputs), or the model's status and
signatures with --metadata.
"""

import json
import sys

from absl import app, flags

from keras_bert_impl.cli import command


def define_flags(f):
    """Defined when the tool runs, so importing this module adds no flags."""
    flags.DEFINE_string(
        "server", "localhost:8500", "host:port of the gRPC API.", flag_values=f
    )
    flags.DEFINE_string(
        "model_name", None, "Model to call.", required=True, flag_values=f
    )
    flags.DEFINE_integer(
        "model_version", None, "A specific version (default: latest).", flag_values=f
    )
    flags.DEFINE_string(
        "signature_name", "", "Signature (default: serving_default).", flag_values=f
    )
    flags.DEFINE_multi_string("text", [], "A text to send (repeatable).", flag_values=f)
    flags.DEFINE_string(
        "input_file", None, "UTF-8 file, one text per line.", flag_values=f
    )
    flags.DEFINE_string(
        "input_name", "text", "Input alias the texts go to.", flag_values=f
    )
    flags.DEFINE_integer("batch_size", 32, "Texts per request.", flag_values=f)
    flags.DEFINE_float(
        "timeout", 30.0, "Deadline of each request, in seconds.", flag_values=f
    )
    flags.DEFINE_integer("max_retries", 5, "Retries after UNAVAILABLE.", flag_values=f)
    flags.DEFINE_string(
        "root_certificates", None, "PEM file of the CA: use TLS.", flag_values=f
    )
    flags.DEFINE_boolean(
        "metadata",
        False,
        "Print the model's status and signatures instead.",
        flag_values=f,
    )


def _jsonable(value):
    return value.tolist() if hasattr(value, "tolist") else value


def read_texts(flag_values):
    texts = list(flag_values.text)
    if flag_values.input_file:
        with open(
            flag_values.input_file, encoding="utf-8", errors="surrogateescape"
        ) as f:
            texts += [line.rstrip("\n") for line in f]
    return texts


def main(flag_values):
    from keras_bert_impl.serving import Client, ServingError

    if flag_values.batch_size < 1:
        raise app.UsageError(f"--batch_size={flag_values.batch_size}: must be >= 1")
    try:
        texts = [] if flag_values.metadata else read_texts(flag_values)
    except OSError as error:
        print(f"kbi-predict: --input_file: {error}", file=sys.stderr)
        return 1
    if not flag_values.metadata and not texts:
        raise app.UsageError("Give --text or --input_file (or --metadata).")
    client = Client(
        flag_values.server,
        flag_values.model_name,
        version=flag_values.model_version,
        timeout=flag_values.timeout,
        max_retries=flag_values.max_retries,
        batch_size=flag_values.batch_size,
        root_certificates=flag_values.root_certificates,
    )
    try:
        if flag_values.metadata:
            version, signatures = client.get_model_metadata()
            print(
                json.dumps(
                    {
                        "status": [list(s) for s in client.get_model_status()],
                        "version": version,
                        "signatures": {
                            name: {
                                "method_name": sig.method_name,
                                "inputs": sorted(sig.inputs),
                                "outputs": sorted(sig.outputs),
                            }
                            for name, sig in sorted(signatures.items())
                        },
                    },
                    indent=2,
                )
            )
            return 0
        outputs = client.predict(
            {
                flag_values.input_name: [
                    t.encode("utf-8", "surrogateescape") for t in texts
                ]
            },
            flag_values.signature_name,
        )
    except ServingError as error:
        print(f"kbi-predict: {flag_values.server} answered {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    for index, text in enumerate(texts):
        row = {"text": text}
        row.update(
            {name: _jsonable(value[index]) for name, value in sorted(outputs.items())}
        )
        print(json.dumps(row, ensure_ascii=False))
    return 0


def run(argv=None):
    """Console entry point: flags are defined here, in a fresh registry."""
    return command.run_with_registry(main, define_flags, argv)
