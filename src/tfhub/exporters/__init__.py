"""Every way tfhub writes a model for the hub, in one package.

=====================================  ==============================================
``keras_model.export_keras``           a Keras 3 model or layer → TF2 Reusable SavedModel
                                       (``hub.export_keras``)
``text_embedding.export_text_embedding``  a word-vector file (parsed by ``embedding_file``)
                                       → sentence-embedding module, TF2 or TF1
                                       (``hub.export_text_embedding``,
                                       ``tfhub export-text-embedding``)
``sentence_transformer``               a sentence-transformers BERT checkpoint → preprocessor,
                                       encoder and sentence-embedding SavedModels
                                       (``tfhub import-sentence-transformer``; pieces in
                                       ``_bert``)
``tf1_checkpoint``                     TF1 modules of a training graph, from its latest
                                       checkpoint (``hub.LatestModuleExporter``,
                                       ``hub.register_module_for_export``)
=====================================  ==============================================

``ModuleSpec.export`` and ``Module.export`` stay methods of the TF1 classes (:mod:`tfhub.tf1`).

A new exporter goes here as one module with one public function; it writes through
:func:`tfhub.staging.staged_directory` (build beside the target, move into place last, nothing
left behind on failure), imports TensorFlow inside the module (never from this package's
``__init__``), and is named in ``tfhub/__init__.py``'s lazy table when it is public.
"""
