"""The DeepLab-v2 decoder: ASPP-v2, four dilated classifiers summed."""
from typing import Sequence

import torch.nn as nn
from torch import Tensor

from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import OptMultiConfig, SampleList
from .loss_by_feat import computes_mmseg_losses, decode_loss_by_feat


@MODELS.register_module()
class DeepLabV2Head(BaseDecodeHead):
    """ASPP of DeepLab-v2 (`Chen et al., TPAMI 2018
    <https://arxiv.org/abs/1606.00915>`_), the decoder of the ILT paper.

    Four parallel 3x3 convolutions with dilations 6, 12, 18 and 24 map the
    encoder's features straight to ``num_classes`` scores each; the four
    score maps are **summed**. Unlike mmseg's ``ASPPHead`` (DeepLab-v3) there
    is no image pooling, no bottleneck and no ``conv_seg``: the four branches
    *are* the classifier, so every tensor of this head has the class count
    as its dim 0 and classifier growth copies all of them row-wise.

    .. code:: text

     forward(): _transform_inputs() -> cls_seg()
     cls_seg(x): dropout(x) (if dropout_ratio > 0) -> sum_i aspp[i](x)
     loss_by_feat(): mmseg's, without host syncs (L_CE, acc_seg)

    Args:
        in_channels (int): Channels of the encoder's output (2048 for
            ResNet-101). ``channels`` is the same number (there is no layer
            in between) and may be omitted.
        dilations (Sequence[int]): Dilation (and padding) of each branch.
            Defaults to (6, 12, 18, 24).
        dropout_ratio (float): Dropout on the input features before the
            branches; DeepLab-v2's ResNet model has none. Defaults to 0.
        init_cfg (dict | list[dict], optional): Initialisation; the authors'
            code draws the branch weights from N(0, 0.01) and zeroes the
            biases. None means ``dict(type='Normal', std=0.01,
            layer='Conv2d')``. Defaults to None.
        **kwargs: The other arguments of ``BaseDecodeHead`` (``num_classes``,
            ``in_index``, ``loss_decode``, ``align_corners``, ...).
    """

    def __init__(self,
                 in_channels: int,
                 dilations: Sequence[int] = (6, 12, 18, 24),
                 dropout_ratio: float = 0.0,
                 init_cfg: OptMultiConfig = None,
                 **kwargs) -> None:
        channels = kwargs.pop('channels', in_channels)
        if channels != in_channels:
            raise ValueError(
                f'DeepLabV2Head has no layer before its classifier, so '
                f'channels ({channels}) must equal in_channels '
                f'({in_channels}); drop the channels argument.')
        if (not isinstance(dilations, (list, tuple)) or len(dilations) == 0
                or not all(isinstance(d, int) and d > 0 for d in dilations)):
            raise ValueError('DeepLabV2Head needs dilations as a non-empty '
                             'sequence of positive ints, e.g. (6, 12, 18, '
                             f'24); got {dilations!r}.')
        if init_cfg is None:
            init_cfg = dict(type='Normal', std=0.01, layer='Conv2d')
        super().__init__(
            in_channels,
            channels,
            dropout_ratio=dropout_ratio,
            init_cfg=init_cfg,
            **kwargs)
        # BaseDecodeHead builds a 1x1 ``conv_seg`` this head never uses; an
        # unused parameter would break DDP without find_unused_parameters.
        del self.conv_seg
        self.dilations = tuple(dilations)
        self.aspp = nn.ModuleList(
            nn.Conv2d(
                self.in_channels,
                self.out_channels,
                kernel_size=3,
                padding=dilation,
                dilation=dilation) for dilation in self.dilations)

    def cls_seg(self, feat: Tensor) -> Tensor:
        """Classify each pixel: the sum of the dilated branches.

        Args:
            feat (Tensor): Features of shape (N, in_channels, h, w).

        Returns:
            Tensor: Logits of shape (N, out_channels, h, w).
        """
        if self.dropout is not None:
            feat = self.dropout(feat)
        out = self.aspp[0](feat)
        for branch in self.aspp[1:]:
            out = out + branch(feat)
        return out

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Compute the logits from the encoder's multi-level features.

        Args:
            inputs (tuple[Tensor]): The encoder's outputs; ``in_index``
                selects the one to classify.

        Returns:
            Tensor: Logits of shape (N, out_channels, h, w).
        """
        return self.cls_seg(self._transform_inputs(inputs))

    @computes_mmseg_losses
    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> dict:
        """L_CE (and ``acc_seg``) of the logits against the samples'
        ``gt_sem_seg``: mmseg's ``BaseDecodeHead.loss_by_feat``, same
        values, without its host syncs (:mod:`.loss_by_feat`).

        Args:
            seg_logits (Tensor): Logits (N, C, h, w) from :meth:`forward`.
            batch_data_samples (list[:obj:`SegDataSample`]): With
                ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: The losses by ``loss_name`` and ``acc_seg``.
        """
        return decode_loss_by_feat(
            self, seg_logits,
            self._stack_batch_gt(batch_data_samples).squeeze(1))
