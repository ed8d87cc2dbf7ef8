"""Translators from model files to a wkbnoise graph: ``read_onnx`` (:mod:`.onnx`), ``read_keras_h5``
(:mod:`.keras_h5`), ``from_torch`` (:mod:`.torch`), and Hugging Face BERT / ViT checkpoints
(:mod:`.huggingface`). Each returns ``(Graph, params)`` and runs nothing from the file; the optional parsers
(``onnx``, ``torch``) are imported only by the module that needs them."""
