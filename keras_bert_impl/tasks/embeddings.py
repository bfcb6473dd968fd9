"""Sentence embeddings from any model's encoder: `EmbeddingsTask`."""

from keras_bert_impl.tasks.base import Task


class EmbeddingsTask(Task):
    """Text -> `pooled_output` and `embedding` (the mean over real tokens,
    L2-normalised unless `--normalize_embeddings=false`). Any model exports
    as embeddings: a task model gives its backbone."""

    export_names = ("embeddings",)

    @classmethod
    def model_from_directory(cls, export_name, init_checkpoint, labels, **kwargs):
        from keras_bert_impl.models import BertBackbone

        # The backbone takes no sequence length: the export's packer sets it.
        return BertBackbone.from_preset(init_checkpoint)

    @classmethod
    def export(cls, model, export_dir, export_name, options, **common):
        from keras_bert_impl.export import exporter

        return exporter.export_embeddings(
            model, export_dir, normalize=options.normalize_embeddings, **common
        )
