"""Private pieces of :mod:`tfhub.exporters.sentence_transformer`: checkpoint reading, the
character tables and WordPiece tokenizer in plain TensorFlow ops, and the BERT encoder."""
