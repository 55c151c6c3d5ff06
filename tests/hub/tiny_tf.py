"""Child-process builder of a tiny TensorFlow SavedModel embedder (see tiny_models.make_tiny_tf_embedder).

Run as `python -m tests.hub.tiny_tf FOLDER VOCAB_SIZE`: writes saved_model.pb + variables/ into FOLDER
(a token embedding, one dense layer with tanh, masked; signature inputs `input_ids` and
`attention_mask`, output `last_hidden_state`) and reference.npz with TensorFlow's output on fixed ids.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HIDDEN = 16
SEED = 0


def main(folder: Path, vocab_size: int) -> None:
    """Build, save and record the reference output."""
    import tensorflow as tf

    rng = np.random.default_rng(SEED)

    class Embedder(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.embedding = tf.Variable(rng.normal(0, 1, (vocab_size, HIDDEN)).astype(np.float32))
            self.kernel = tf.Variable(rng.normal(0, 0.5, (HIDDEN, HIDDEN)).astype(np.float32))
            self.bias = tf.Variable(rng.normal(0, 0.1, (HIDDEN,)).astype(np.float32))

        @tf.function(  # type: ignore[untyped-decorator]
            input_signature=[
                tf.TensorSpec([None, None], tf.int64, name="input_ids"),
                tf.TensorSpec([None, None], tf.int64, name="attention_mask"),
            ]
        )
        def __call__(self, input_ids: tf.Tensor, attention_mask: tf.Tensor) -> dict[str, tf.Tensor]:
            hidden = tf.tanh(tf.matmul(tf.gather(self.embedding, input_ids), self.kernel) + self.bias)
            mask = tf.cast(attention_mask, tf.float32)[:, :, None]
            return {"last_hidden_state": hidden * mask}

    model = Embedder()
    tf.saved_model.save(model, str(folder), signatures={"serving_default": model.__call__})
    ids = rng.integers(5, vocab_size, (2, 7)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    out = model(tf.constant(ids), tf.constant(mask))["last_hidden_state"].numpy()
    np.savez(folder / "reference.npz", input_ids=ids, attention_mask=mask, last_hidden_state=out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
