"""Train in the channels-last memory layout (``channels_last = True``)."""
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmseg.registry import HOOKS
from .runner_model import runner_model


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Put the model's 4-D weights (and so its activations) in the
    channels-last (NHWC) layout before training.

    cuDNN's tensor-core convolutions and oneDNN run NHWC natively; in the
    default NCHW layout they transpose around every convolution. A
    convolution whose weight is channels-last returns a channels-last
    output, so converting the weights converts the whole network, from
    its first convolution on (the input batch stays as it is). Values are
    unchanged: only the strides differ, and checkpoints load into an NCHW
    model as before. A ``DistillEncoderDecoder``'s teacher M_{k-1} follows
    its student's layout.
    """

    priority = 'HIGH'

    def before_train(self, runner) -> None:
        model = runner_model(runner)
        model.to(memory_format=torch.channels_last)
        print_log(
            'channels_last: the model trains in the NHWC layout.',
            logger='current')
