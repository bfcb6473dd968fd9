"""Token classification (CoNLL-2003 NER): `TokenClassificationTask`."""

import json
import os

from keras_bert_impl.tasks.base import SPLIT_FLAGS, FinetuningTask
from keras_bert_impl.tasks.base import check_split_files, data_dir_file
from keras_bert_impl.tasks.base import refuse_unread_flags
from keras_bert_impl.training import evaluation

# CoNLL's file of each split under --data_dir.
SPLIT_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}


class TokenClassificationTask(FinetuningTask):
    """A tag per word, trained on CoNLL files (a word first and its tag last
    on each line, a blank line between sentences): `--data_dir` with
    CoNLL-2003's train.txt, valid.txt and test.txt, or your own files as
    `--train_file`, `--validation_file`, `--test_file`. Long sentences are cut
    into windows of whole words (`text.word_windows`). Scored by entity F1
    (conlleval); predictions go to `test_predictions.json`, each sentence's
    words beside their tags."""

    task_names = ("conll2003", "ner")
    export_names = ("token_classifier",)
    model_class_name = "BertTokenClassifier"

    @classmethod
    def input_flags(cls, task_name):
        return ("data_dir", *SPLIT_FLAGS.values())

    @classmethod
    def check_inputs(cls, settings):
        refuse_unread_flags(settings, cls.input_flags(settings.task_name))
        files = [flag for flag in SPLIT_FLAGS.values() if getattr(settings, flag)]
        if settings.data_dir and files:
            raise ValueError(
                f"--data_dir and --{files[0]} both name the data: give --data_dir "
                "(with train.txt, valid.txt, test.txt) or --train_file, "
                "--validation_file, --test_file."
            )
        if not settings.data_dir:
            check_split_files(
                settings,
                "a CoNLL file; or --data_dir with train.txt, valid.txt, test.txt",
            )

    def read(self, split):
        from keras_bert_impl.data import tasks

        s = self.settings
        path = (
            data_dir_file(s, SPLIT_FILES[split])
            if s.data_dir
            else getattr(s, SPLIT_FLAGS[split])
        )
        sentences = tasks.read_conll(path, label_vocabulary=self.label_vocabulary)
        if self.label_vocabulary is None:
            self.label_vocabulary = sentences.label_vocabulary
        return sentences

    def features(self, examples):
        from keras_bert_impl.data import tasks

        return tasks.conll_features(
            examples, self.tokenizer, self.settings.max_seq_length
        )

    def dataset(self, features, batch_size, training):
        return features.dataset(batch_size, **self.batching(training))

    def build_model(self, dtype):
        from keras_bert_impl import models, preprocessing

        preprocessor = preprocessing.BertTokenClassifierPreprocessor(
            tokenizer=self.tokenizer, sequence_length=self.settings.max_seq_length
        )
        return self.model_with_head(
            models.BertTokenClassifier,
            dtype,
            preprocessor,
            label_names=self.label_vocabulary,
        )

    def evaluate(self, outputs, examples, features):
        return evaluation.entity_f1(examples.tags, features.word_predictions(outputs))

    def write_predictions(self, outputs, examples, features, output_dir):
        from keras_bert_impl.training.history import write_atomically

        path = os.path.join(output_dir, "test_predictions.json")
        tags = features.word_predictions(outputs)
        # Each sentence's words beside their tags, and where it starts in test.txt.
        sentences = [
            {"first_line": line, "words": list(words), "tags": sentence_tags}
            for words, line, sentence_tags in zip(
                examples.words, examples.first_lines, tags
            )
        ]
        write_atomically(path, json.dumps(sentences, indent=1) + "\n")
        return path

    @classmethod
    def model_from_directory(cls, export_name, init_checkpoint, labels, **kwargs):
        from keras_bert_impl.models import BertTokenClassifier

        if not labels:
            raise ValueError(
                "--labels is required to export a token classifier head from a "
                "checkpoint directory"
            )
        return BertTokenClassifier.from_preset(
            init_checkpoint, label_names=labels, **kwargs
        )

    @classmethod
    def export(cls, model, export_dir, export_name, options, **common):
        from keras_bert_impl.export import exporter

        return exporter.export_token_classifier(
            model, export_dir, labels=options.labels, **common
        )
