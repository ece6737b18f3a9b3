"""Fine-tuning a trained model on new data: fitting its alphabet to a store, and loading its weights
into a network that may read or write more characters. ``hwkit.train.start(init_from=...)`` uses both."""

from __future__ import annotations

import torch

from hwkit.alphabet import Alphabet
from hwkit.checkpoint import Checkpoint
from hwkit.errors import CheckpointError, TextError
from hwkit.store import Store


def fit_alphabet(alphabet: Alphabet, store: Store, *, extend: bool) -> Alphabet:
    """``alphabet`` (a model's), able to encode every text of ``store``.

    Characters the store has and the model lacks are a ``TextError`` naming
    them, or with ``extend`` new codes after the model's own (their weights start
    fresh, ``load_grown``). Characters the model has and the store lacks stay.
    """
    missing = sorted({c for text in store.texts for c in alphabet.unknown(text)})
    if not missing:
        return alphabet
    if not extend:
        shown = " ".join(repr(c) for c in missing)
        raise TextError(f"{store.path}: characters the model's alphabet lacks: {shown} "
                        "(--extend-alphabet adds them, with freshly initialised weights)")  # fmt: skip
    return Alphabet(alphabet.chars + "".join(missing))


def load_grown(model: torch.nn.Module, init: Checkpoint) -> None:
    """Load ``init``'s weights into ``model``, which may read or write a larger alphabet.

    Every weight that grew with the alphabet holds the characters in its last
    input columns (the window's one-hot) or first output rows (the recognizer's
    classes), in code order, and new codes come after the old: so the old weights
    go into the leading block and the rest keep ``model``'s fresh initialisation.
    """
    state = model.state_dict()
    for name, old in init.weights.items():
        new = state.get(name)
        if new is None or new.dim() != old.dim() or any(o > n for o, n in zip(old.shape, new.shape)):
            raise CheckpointError(f"{init.name}: weight {name} does not fit the model to fine-tune")
        new[tuple(slice(0, size) for size in old.shape)] = old
    model.load_state_dict(state)
