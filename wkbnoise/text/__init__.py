"""Text inputs of encoders: token-id batches, the bundled English sentences, and BERT WordPiece tokenization.

``sentence_inputs(model)`` gives the token ids that an encoder loaded from a Hugging Face folder is
evaluated on when no inputs file is given; ``token_batch(tensors, model)`` checks ids read from a file.
"""

from __future__ import annotations

from .batch import (TOKEN_NAMES, TokenBatch, TokenCheckpoints, encoder_limits, encoder_outputs, token_batch,
                    token_outputs)
from .folder import BACKENDS, bundled_sentences, load_tokenizer, model_folder, sentence_inputs
from .wordpiece import WordPiece

__all__ = ["TokenBatch", "TokenCheckpoints", "TOKEN_NAMES", "token_batch", "encoder_limits",
           "encoder_outputs", "token_outputs", "WordPiece", "bundled_sentences", "load_tokenizer",
           "sentence_inputs", "model_folder", "BACKENDS"]
