"""coursekit's PyTorch part: penalties and optimizers that need autograd.

- :func:`input_gradient_penalty`: double backpropagation / DataGrad, a penalty on the norm of
  the loss gradient with respect to the inputs.
- :class:`SAM`: sharpness-aware minimization around any ``torch.optim`` optimizer.

Needs PyTorch (``pip install "coursekit[torch]"``). Nothing else in coursekit imports torch,
and nothing imports this package implicitly.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "coursekit.torch_extras needs PyTorch, which is not installed; "
        'install it with: pip install "coursekit[torch]"'
    ) from exc

from coursekit.torch_extras.datagrad import input_gradient_penalty
from coursekit.torch_extras.sam import SAM

__all__ = ["input_gradient_penalty", "SAM"]
