"""The segmentor a Runner trains, without its DDP (or other) wrapper, and
where it lives."""
from mmengine.model import is_model_wrapper
from torch import nn


def runner_model(runner) -> nn.Module:
    """``runner.model``, unwrapped from mmengine's model wrapper if any."""
    model = runner.model
    return model.module if is_model_wrapper(model) else model


def on_cuda(model: nn.Module) -> bool:
    """Whether ``model`` (wrapped or not) holds its parameters on a GPU."""
    param = next(model.parameters(), None)
    return param is not None and param.is_cuda
