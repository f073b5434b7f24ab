"""Wire core ops into PyTorch autograd: wiring only, no maths."""

from __future__ import annotations

from typing import Any

import torch

from ..autodiff import Op


class _CoreFunction(torch.autograd.Function):
    # forward returns (out, *residuals); residuals are saved and never differentiated.

    @staticmethod
    def forward(op: Op, options: dict[str, Any], *arrays: torch.Tensor) -> Any:
        out, residuals = op.forward(*arrays, **options)
        # torch refuses to save an input returned as an output; a view of it is fine
        residuals = tuple(r.view_as(r) if any(r is a for a in arrays) else r for r in residuals)
        return (out, *residuals)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        op, options, *_ = inputs
        ctx.op = op
        ctx.options = options
        residuals = output[1:]
        ctx.mark_non_differentiable(*residuals)
        # no zero-filled "gradients" for the residual outputs: they are never used
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*residuals)

    @staticmethod
    def backward(ctx: Any, cotangent: torch.Tensor, *_: Any) -> Any:
        needs = tuple(ctx.needs_input_grad[2:])
        if cotangent is None:  # the output did not reach the loss
            return (None, None, *(None for _ in needs))
        grads = ctx.op.vjp(
            tuple(ctx.saved_tensors), cotangent.contiguous(), needs=needs, **ctx.options
        )
        return (None, None, *grads)


def call(op: Op, arrays: tuple[torch.Tensor, ...], options: dict[str, Any]) -> torch.Tensor:
    """Run ``op`` with PyTorch autograd through its explicit VJP."""
    if not torch.is_grad_enabled() or not any(a.requires_grad for a in arrays):
        return op.forward(*arrays, **options)[0]
    return apply_function(_CoreFunction, op, options, *arrays)[0]


# ``autograd.Function.apply`` binds its arguments to ``forward``'s signature on
# every call when ``setup_context`` is defined (about 30 us, more than a small
# warp's sampling step); the C entry point it then calls does the rest.
_unwrap: Any
try:
    from torch._functorch.utils import unwrap_dead_wrappers as _unwrap
except ImportError:  # another PyTorch layout: the public path below
    _unwrap = None


def apply_function(function: type[torch.autograd.Function], *args: Any) -> Any:
    """``function.apply(*args)`` for positional ``args``, without the per-call signature binding.

    Under ``torch.compile`` and functorch transforms (``torch.func``), or where
    this PyTorch lacks the helper it needs, it is ``function.apply`` itself.
    """
    if (
        _unwrap is None
        or torch.compiler.is_compiling()  # torch.compile knows Function.apply only
        or torch._C._are_functorch_transforms_active()
    ):
        return function.apply(*args)
    return super(torch.autograd.Function, function).apply(*_unwrap(args))  # type: ignore[misc]
