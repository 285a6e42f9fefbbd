"""Optimizers on dicts of named numpy arrays, following ``torch.optim``.

``SGD``, ``Adagrad``, ``RMSprop``, ``Adam`` and ``AdamW`` update ``params`` in place from a
dict of gradients; :mod:`coursekit.optim.functional` holds the same update rules as plain
one-step functions.
"""

from coursekit.optim import functional
from coursekit.optim.adagrad import Adagrad
from coursekit.optim.adam import Adam, AdamW
from coursekit.optim.base import Optimizer
from coursekit.optim.rmsprop import RMSprop
from coursekit.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "functional"]
