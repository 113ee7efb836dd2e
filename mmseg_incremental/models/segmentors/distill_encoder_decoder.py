"""M_k trained from M_{k-1}: the ILT segmentor (L'_D, L''_D, EF), MiB
(unbiased CE and KD) and PLOP (Local POD, pseudo-labels)."""
import copy
import logging
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import CheckpointLoader, load_state_dict
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig, SampleList,
                         add_prefix)
from ..losses import OutputDistillLoss, UnbiasedDistillLoss
from ..utils import NEW_CLASS_INITS, grow_classifier_, infer_num_old_classes
from ..utils.pseudo_label import plop_entropy_thresholds, plop_pseudo_label
from ..utils.teacher_cache import (TeacherCache, input_checksums,
                                   state_fingerprint)
from ..decode_heads.loss_by_feat import (decode_loss_by_feat,
                                         has_mmseg_loss_by_feat,
                                         head_loss_by_feat)
from .mib_plop_parts import (TeacherOutputs, check_pseudo_label, head_forward,
                             install_decode_loss, request_all_stages,
                             upsample_to)

#: Modules whose weights autocast casts to its low-precision dtype.
_AUTOCAST_MODULES = (nn.modules.conv._ConvNd, nn.Linear)


def _without_pretrained(cfg: ConfigType) -> ConfigType:
    """A copy of a backbone config that loads no pretrained weights.

    Every weight of M_k comes from M_{k-1}, so an ImageNet/COCO checkpoint
    would be read only to be overwritten (and might not exist any more).
    """
    cfg = copy.deepcopy(cfg)
    if cfg.get('pretrained') is not None:
        cfg['pretrained'] = None
    init_cfg = cfg.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        cfg['init_cfg'] = None
    elif isinstance(init_cfg, (list, tuple)):
        cfg['init_cfg'] = [
            c for c in init_cfg if c.get('type') != 'Pretrained'
        ] or None
    return cfg


def _with_num_classes(head: OptConfigType, num_classes: int) -> OptConfigType:
    """A copy of a head config (or list of them) with ``num_classes``."""
    if head is None:
        return None
    if isinstance(head, (list, tuple)):
        return [_with_num_classes(h, num_classes) for h in head]
    head = copy.deepcopy(head)
    if head.get('out_channels') not in (None, 1):
        head['out_channels'] = num_classes
    head['num_classes'] = num_classes
    return head


def _build_loss(cfg: OptConfigType, default: str) -> Optional[nn.Module]:
    """Build a distillation loss from its config (``type`` optional)."""
    if cfg is None:
        return None
    cfg = copy.deepcopy(cfg)
    cfg.setdefault('type', default)
    return MODELS.build(cfg)


def _read_state_dict(filename: str) -> Dict[str, Tensor]:
    """The ``state_dict`` of an mmengine checkpoint, ``module.`` stripped."""
    is_uri = re.match(r'^[a-zA-Z][\w+.-]*://', filename) is not None
    if not is_uri and not osp.isfile(osp.expanduser(filename)):
        raise FileNotFoundError(
            f'teacher_checkpoint {filename!r} does not exist; point '
            'model.teacher_checkpoint at the checkpoint of the previous step '
            '(M_{k-1}), e.g. <work_dir>/step_<k-1>/iter_<n>.pth.')
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise TypeError(f'teacher_checkpoint {filename!r} holds a '
                        f'{type(checkpoint).__name__}, not a dict with a '
                        'state_dict; save it with mmengine.')
    state = checkpoint.get('state_dict', checkpoint)
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def _check_args(teacher_checkpoint: Optional[str],
                new_class_init: str,
                freeze_encoder: bool,
                distill_output: OptConfigType,
                distill_feature: OptConfigType,
                teacher_cache: OptConfigType,
                distill_pod: OptConfigType = None,
                pseudo_label: OptConfigType = None) -> None:
    """One clear error for each impossible combination of arguments."""
    if not teacher_checkpoint:
        raise ValueError('DistillEncoderDecoder needs teacher_checkpoint, '
                         'the checkpoint of M_{k-1}; at step 0 use a '
                         "plain 'EncoderDecoder'.")
    if new_class_init not in NEW_CLASS_INITS:
        raise ValueError(f'new_class_init={new_class_init!r} is unknown; '
                         "use 'default' (fresh rows) or 'background' "
                         '(MiB).')
    if freeze_encoder and distill_feature is not None:
        raise ValueError(
            "L''_D (distill_feature) with EF (freeze_encoder=True) is "
            'meaningless: the frozen encoder equals the teacher\'s. Set '
            'distill_feature=None or freeze_encoder=False.')
    if teacher_cache is not None:
        if (distill_output is None and pseudo_label is None) \
                or distill_feature is not None or distill_pod is not None:
            raise ValueError(
                "teacher_cache replays the teacher's logits for L'_D (or "
                "PLOP's pseudo-labels); it needs distill_output (or "
                "pseudo_label) and no distill_feature or distill_pod (L''_D "
                "and POD need the teacher's features at every iteration, so "
                'the cache would save only its head). Set teacher_cache='
                'None.')
        unknown = set(teacher_cache) - {'dir', 'max_size_mb'}
        if unknown:
            raise ValueError(f'teacher_cache got {sorted(unknown)}; it takes '
                             "'dir' and 'max_size_mb'.")


def _low_precision_copy(teacher: nn.Module, dtype: torch.dtype,
                        channels_last: bool) -> nn.Module:
    """A copy of the frozen teacher whose conv/linear weights are already
    in ``dtype``, which autocast then uses as they are."""
    teacher = copy.deepcopy(teacher)
    for module in teacher.modules():
        if isinstance(module, _AUTOCAST_MODULES):
            module.to(dtype)
    if channels_last:
        teacher.to(memory_format=torch.channels_last)
    return teacher.eval()


@MODELS.register_module()
class DistillEncoderDecoder(EncoderDecoder):
    """ILT's step-k segmentor: M_k learns U_k while M_{k-1} teaches S_{k-1}.

    The teacher M_{k-1} is a plain ``EncoderDecoder`` of the same
    architecture with C_old = |S_{k-1}| classes (read off the classifier in
    ``teacher_checkpoint``). It is built and loaded here, frozen, always in
    eval mode and run under ``torch.no_grad()``. It is deliberately **not a
    registered submodule**: it never appears in ``state_dict()`` (a step-k
    checkpoint holds only ``backbone.*``/``decode_head.*`` and loads into a
    stock ``EncoderDecoder`` with |S_k| classes), in ``parameters()`` (the
    optimizer, DDP and ``init_weights`` never see it) nor in ``train()``;
    ``_apply`` moves it with the student (``.to()``, ``.cuda()``, ...).

    The student M_k (this model, C_new = |S_k| = ``decode_head.num_classes``)
    starts from M_{k-1}'s weights with the classifier grown C_old -> C_new
    (see :func:`grow_classifier_`), at construction and again at the end of
    ``init_weights()`` (which mmengine's Runner calls before it loads a
    resume checkpoint), so the copy survives the Runner's initialisation.

    .. code:: text

     loss(): extract_feat() -> decode_head.forward() -> loss_by_feat() (L_CE)
             -> _distill_loss() -> _teacher_outputs() under no_grad:
                  _runnable_teacher(): M_{k-1}, or its low-precision copy
                      under autocast
                  features: shared under EF, else the teacher's encoder
                  logits: from the teacher_cache where it has them, else
                      the teacher's head (then stored)
                -> L'_D, L''_D

    L = L_CE + lambda'_D L'_D + lambda''_D L''_D, logged as
    ``decode.loss_ce``, ``distill.loss_distill_out`` and
    ``distill.loss_distill_feat``. L'_D compares the logits at their own
    resolution or, with ``resolution='labels'``, upsampled to the labels as
    L_CE does (the loss gets the head's ``ignore_index`` and
    ``align_corners``); L''_D the features the decode head reads (res5).

    MiB and PLOP (any mmseg decode head whose ``loss_by_feat`` is
    ``BaseDecodeHead``'s):

    * ``decode_loss`` (MiB's ``UnbiasedCrossEntropyLoss``) becomes the
      student head's ``loss_decode`` (C_old set in it): mmseg's
      ``loss_by_feat`` upsamples the logits to the labels and calls it as
      any mmseg loss, logged as ``decode.loss_unbiased_ce``. The teacher's
      head and auxiliary heads keep the configured loss.
    * ``distill_output=dict(type='UnbiasedDistillLoss')`` (MiB's KD):
      student logits (C_new) against the teacher's first C_old outputs, at
      the labels' resolution (the loss's ``resolution='labels'``, MiB) or
      the logits' (``'logits'``), logged as ``distill.loss_unbiased_kd``.
    * ``distill_pod`` (PLOP's Local POD, ``PODLoss``): the pairs are every
      backbone output (a ResNet is asked for all its stages at
      construction, the heads' ``in_index`` re-pointed: see
      :func:`request_all_stages`; other encoders give what they return),
      the decoder's output before its classifier (the input of
      ``cls_seg``, where the head has a ``conv_seg``; ``DeepLabV2Head``
      has none) and the logits at the features' resolution, all from the
      one student forward; scaled by sqrt(|S_k| / |U_k|). Logged as
      ``distill.loss_pod``.
    * ``pseudo_label`` (PLOP): the per-class entropy thresholds of the
      step come from one teacher pass over the step's training images
      before training (``PseudoLabelHook``, which the experiment adds, or
      :meth:`fit_pseudo_label_thresholds`); each batch, pixels labelled
      background or old take the teacher's confident prediction (else
      ignored), and the decode loss runs on these labels weighted by the
      adaptive factor per image (mmseg's per-pixel ``weight``; PLOP's
      reduction is mmseg's ``avg_non_ignore=False``). Logged as
      ``decode.loss_ce`` and ``decode.pseudo_factor`` (the mean factor,
      not a loss).

    With a fixed classifier the teacher's outputs beyond C_old are dropped
    for these terms.

    EF (``freeze_encoder=True``): the backbone and neck get
    ``requires_grad=False`` at construction (so DDP, built later, neither
    registers nor waits for them), stay in eval mode (BN statistics fixed)
    and run under ``torch.no_grad()``. While the student's encoder equals the
    teacher's, the encoder runs once per batch and both heads read its
    features. The equality is re-verified (``torch.equal`` on every tensor)
    whenever any encoder tensor of either model was written or replaced
    since the last check -- a ``load_state_dict`` at any level, an in-place
    edit by a hook, a ``.data`` swap -- which each batch detects from the
    tensors' version counters and storage pointers without touching their
    values.

    Speed. The teacher runs under ``torch.no_grad()`` and in eval mode
    (``inference_mode`` measured no faster), on the CPU in channels_last
    (oneDNN's own layout: the tiny R18 teacher's forward ~17 % faster, the
    L'_D step ~3 % faster, for ~6 % more step memory). Under autocast
    (``amp`` in the experiment: mmengine's ``AmpOptimWrapper``) it runs as
    a copy whose conv/linear weights were cast to the autocast dtype once,
    in channels_last on every device: autocast caches its weight casts
    only for leaves that require grad, so it would cast every frozen
    teacher weight again at each use, and low-precision convolutions on
    NCHW tensors reorder their data at every call; the copy gives
    autocast's logits bit for bit without either (measured on the CPU,
    bf16: 113 casts and 221 copies per R101 forward -> 1 and 2, the
    forward 1.8x faster). With ``teacher_cache`` the teacher's logits of
    an image are computed once and replayed
    (:mod:`mmseg_incremental.models.utils.teacher_cache`).

    Args:
        backbone (ConfigType): As ``EncoderDecoder``; pretrained weights in
            it are not loaded (every weight comes from M_{k-1}).
        decode_head (ConfigType): As ``EncoderDecoder``; ``num_classes`` is
            |S_k|.
        teacher_checkpoint (str): Path of M_{k-1}'s mmengine checkpoint
            (a dict with ``state_dict``, keys ``backbone.*``,
            ``decode_head.*``).
        distill_output (dict, optional): An ``OutputDistillLoss`` config
            for L'_D (``type`` may be omitted). None turns L'_D off.
            Defaults to None.
        distill_feature (dict, optional): A ``FeatureDistillLoss`` config
            for L''_D. None turns L''_D off. Defaults to None.
        freeze_encoder (bool): EF. Defaults to False.
        new_class_init (str): ``'default'`` (fresh init of the U_k rows) or
            ``'background'`` (MiB). Defaults to ``'default'``.
        num_old_classes (int, optional): C_old = |S_{k-1}|. When given, the
            teacher checkpoint's class count must equal it -- unless the
            checkpoint has as many outputs as the student: then the
            classifier is *fixed* (the authors' code: every class has an
            output from step 0 on, nothing grows), the student starts as an
            exact copy of M_{k-1}, and C_old, which L'_D's pixel mask needs,
            comes from here. Defaults to None.
        teacher_cache (dict, optional): Replay M_{k-1}'s L'_D logits: the
            first time a training image (``img_path``) comes, the teacher
            runs and its logits are stored in fp16 at their own resolution
            with a checksum of the input; later visits read them back.
            Needs one fixed augmentation per image (the training dataset's
            ``augment_seed``, which the experiment sets); an image whose
            input differs from its entry runs the teacher live (one
            warning). Keys: ``dir`` (folder of per-process files, reused by
            a resumed step; None: in memory; the experiment sets
            ``<step work dir>/teacher_cache``) and ``max_size_mb``
            (default 1024; beyond it the teacher runs live). Only with
            L'_D and without L''_D. Under EF the encoder is shared anyway
            and the cache saves the teacher's head only. None: the
            teacher runs at every iteration. Defaults to None.
        decode_loss (dict | list[dict], optional): The decode head's
            classification loss at this step (MiB:
            ``dict(type='UnbiasedCrossEntropyLoss')``), replacing its
            ``loss_decode``; losses with a ``num_old_classes`` attribute
            get C_old. None keeps the head's. Defaults to None.
        distill_pod (dict, optional): A ``PODLoss`` config (PLOP's Local
            POD). None turns it off. Defaults to None.
        pseudo_label (dict, optional): PLOP's pseudo-labelling: ``type``
            ('entropy'), ``threshold`` (0.001), ``num_bins`` (100),
            ``median_rule`` ('plop' or 'interpolated'),
            ``adaptive_factor`` (True). None turns it off. Defaults to
            None.
        num_seen_classes (int, optional): |S_k|, for POD's class factor
            and the entropy normaliser; needed only with a fixed
            classifier (else it is ``num_classes``). Defaults to None.
        neck, auxiliary_head, train_cfg, test_cfg, data_preprocessor,
        pretrained, init_cfg: As ``EncoderDecoder`` (``pretrained`` is
            ignored, see ``backbone``).
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 neck: OptConfigType = None,
                 auxiliary_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 *,
                 teacher_checkpoint: Optional[str] = None,
                 distill_output: OptConfigType = None,
                 distill_feature: OptConfigType = None,
                 freeze_encoder: bool = False,
                 new_class_init: str = 'default',
                 num_old_classes: Optional[int] = None,
                 teacher_cache: OptConfigType = None,
                 decode_loss: OptConfigType = None,
                 distill_pod: OptConfigType = None,
                 pseudo_label: OptConfigType = None,
                 num_seen_classes: Optional[int] = None) -> None:
        _check_args(teacher_checkpoint, new_class_init, freeze_encoder,
                    distill_output, distill_feature, teacher_cache,
                    distill_pod, pseudo_label)
        pseudo_label = check_pseudo_label(pseudo_label)
        if pretrained is not None:
            print_log(
                f'DistillEncoderDecoder ignores pretrained={pretrained!r}: '
                'every weight comes from the teacher checkpoint.',
                logger='current',
                level=logging.INFO)
        backbone = _without_pretrained(backbone)
        if distill_pod is not None:
            # POD reads every stage: asked of both models alike.
            backbone, decode_head, auxiliary_head, _ = request_all_stages(
                backbone, neck, decode_head, auxiliary_head)
        teacher_cfg = dict(
            type='EncoderDecoder',
            backbone=copy.deepcopy(backbone),
            neck=copy.deepcopy(neck),
            decode_head=decode_head,
            auxiliary_head=auxiliary_head,
            train_cfg=copy.deepcopy(train_cfg),
            test_cfg=copy.deepcopy(test_cfg),
            data_preprocessor=copy.deepcopy(data_preprocessor))
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self._build_losses(distill_output, distill_feature)
        self.teacher_checkpoint = teacher_checkpoint
        self.new_class_init = new_class_init
        self.freeze_encoder = bool(freeze_encoder)
        teacher = self._load_teacher(teacher_cfg, teacher_checkpoint,
                                     num_old_classes)
        # A tuple hides M_{k-1} from nn.Module's registration (see above).
        self._teacher = (teacher, )

        grow_classifier_(self, teacher.state_dict(), self.teacher_classes,
                         new_class_init)
        self._encoder_shared: Optional[bool] = None
        self._encoder_stamp: Optional[tuple] = None
        self._stamp_dicts: List[dict] = []
        # How the teacher runs (see "Speed"): the device type its layout
        # was set for, and its low-precision copy, (dtype, module), or
        # False once that failed.
        self._teacher_layout: Optional[str] = None
        self._low_precision = None
        self._set_teacher_layout()
        self.teacher_cache = None
        if teacher_cache is not None:
            cache = dict(teacher_cache)
            if cache.get('dir') is not None:
                cache['fingerprint'] = state_fingerprint(teacher.state_dict())
            self.teacher_cache = TeacherCache(**cache)
        if self.freeze_encoder:
            for module in self._encoder_modules():
                module.requires_grad_(False)
            self.train(self.training)
        self._set_mib_plop(decode_loss, distill_pod, pseudo_label,
                           num_seen_classes)

    def _build_losses(self, distill_output: OptConfigType,
                      distill_feature: OptConfigType) -> None:
        """L'_D (ignoring the pixels L_CE ignores) and L''_D."""
        kind = None if distill_output is None else distill_output.get(
            'type', 'OutputDistillLoss')
        if kind == 'OutputDistillLoss':
            distill_output = dict(distill_output)
            distill_output.setdefault('ignore_index',
                                      self.decode_head.ignore_index)
            distill_output.setdefault('align_corners',
                                      self.decode_head.align_corners)
        elif kind == 'UnbiasedDistillLoss':
            distill_output = dict(distill_output)
            distill_output.setdefault('align_corners',
                                      self.decode_head.align_corners)
        self.distill_output = _build_loss(distill_output, 'OutputDistillLoss')
        self.distill_feature = _build_loss(distill_feature,
                                           'FeatureDistillLoss')

    def _set_mib_plop(self, decode_loss: OptConfigType,
                      distill_pod: OptConfigType, pseudo_label: Optional[dict],
                      num_seen_classes: Optional[int]) -> None:
        """MiB's decode loss, PLOP's POD and pseudo-labelling (after the
        teacher is loaded: they need C_old)."""
        self.decode_loss = decode_loss
        if decode_loss is not None:
            install_decode_loss(self.decode_head, decode_loss,
                                self.num_old_classes)
        self.distill_pod = _build_loss(distill_pod, 'PODLoss')
        self.pseudo_label = pseudo_label
        # (thresholds on the CPU, max_entropy) once fitted; per-device copies
        self._pseudo_label_fit: Optional[Tuple[Tensor, float]] = None
        self._thresholds_on: Dict[torch.device, Tensor] = {}
        fixed = self.teacher_classes == self.num_classes
        if num_seen_classes is None:
            if fixed and (distill_pod is not None or pseudo_label is not None):
                raise ValueError(
                    'POD and pseudo_label need |S_k|; with a fixed '
                    'classifier (every output from step 0) pass '
                    'num_seen_classes=|S_k| (the experiment does).')
            num_seen_classes = self.num_classes
        elif not self.num_old_classes < num_seen_classes <= self.num_classes \
                or (not fixed and num_seen_classes != self.num_classes):
            raise ValueError(
                f'num_seen_classes={num_seen_classes} must be |S_k|: more '
                f'than C_old={self.num_old_classes}, at most the '
                f'{self.num_classes} outputs (equal to them when the '
                'classifier grows).')
        self.num_seen_classes = int(num_seen_classes)

    def _load_teacher(self, teacher_cfg: dict, checkpoint: str,
                      num_old_classes: Optional[int]) -> EncoderDecoder:
        """Build M_{k-1} with C_old classes (read off its checkpoint) and
        load it strictly; frozen, in eval mode. Sets ``num_old_classes``."""
        teacher_state = _read_state_dict(checkpoint)
        c_teacher = infer_num_old_classes(self.state_dict(), teacher_state,
                                          self.num_classes)
        fixed = c_teacher == self.num_classes
        if fixed and (num_old_classes is None
                      or not 0 < num_old_classes < self.num_classes):
            raise ValueError(
                f'The teacher checkpoint {checkpoint!r} has as many outputs '
                f'({c_teacher}) as the student: a fixed classifier, which '
                'needs num_old_classes = |S_{k-1}| < num_classes (got '
                f'{num_old_classes}); or set decode_head.num_classes to '
                '|S_k| > |S_{k-1}| to grow it.')
        if not fixed and num_old_classes is not None \
                and c_teacher != num_old_classes:
            raise ValueError(
                f'The teacher checkpoint {checkpoint!r} has {c_teacher} '
                f'classes but num_old_classes={num_old_classes}; point '
                'teacher_checkpoint at the model of the previous step or fix '
                'num_old_classes (|S_{k-1}|).')
        if c_teacher > self.num_classes:
            raise ValueError(
                f'The teacher checkpoint {checkpoint!r} has {c_teacher} '
                f'classes, the student {self.num_classes}; step k must add '
                'classes: set decode_head.num_classes to |S_k| > |S_{k-1}|.')
        self.num_old_classes = num_old_classes if fixed else c_teacher
        self.teacher_classes = c_teacher
        teacher_cfg = dict(
            teacher_cfg,
            decode_head=_with_num_classes(teacher_cfg['decode_head'],
                                          c_teacher),
            auxiliary_head=_with_num_classes(teacher_cfg['auxiliary_head'],
                                             c_teacher))
        teacher = revert_sync_batchnorm(MODELS.build(teacher_cfg))
        load_state_dict(teacher, teacher_state, strict=True)
        teacher.requires_grad_(False)
        teacher.eval()
        return teacher

    @property
    def teacher(self) -> EncoderDecoder:
        """EncoderDecoder: M_{k-1} (frozen, eval mode, not a submodule)."""
        return self._teacher[0]

    def _encoder_modules(self,
                         model: Optional[EncoderDecoder] = None
                         ) -> List[nn.Module]:
        model = self if model is None else model
        return [model.backbone] + ([model.neck] if model.with_neck else [])

    def init_weights(self) -> None:
        """Run the configured initialisation, then copy M_{k-1} again.

        The new rows of the classifier keep the configured initialisation
        (``'default'``) or are set as MiB does (``'background'``).
        """
        super().init_weights()
        grow_classifier_(self, self.teacher.state_dict(), self.teacher_classes,
                         self.new_class_init)
        self._encoder_shared = None

    def train(self, mode: bool = True) -> 'DistillEncoderDecoder':
        """Set the student's mode; the teacher (and under EF the encoder)
        stays in eval mode."""
        super().train(mode)
        if '_teacher' in self.__dict__:
            self.teacher.eval()
        if getattr(self, 'freeze_encoder', False):
            for module in self._encoder_modules():
                module.eval()
        return self

    def _apply(self, fn, *args, **kwargs) -> 'DistillEncoderDecoder':
        """Apply ``fn`` (device/dtype moves) to the teacher as well."""
        super()._apply(fn, *args, **kwargs)
        if '_teacher' in self.__dict__:
            self.teacher._apply(fn, *args, **kwargs)
            self._encoder_shared = None
            self._set_teacher_layout()
            if self._low_precision is not False:
                self._low_precision = None
        return self

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """The student's encoder features (no graph under EF)."""
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and not self.freeze_encoder):
            return super().extract_feat(inputs)

    def _teacher_shares_encoder(self) -> bool:
        """Whether the student's encoder provably computes the teacher's
        features: EF and bit-identical parameters and buffers."""
        if not self.freeze_encoder:
            return False
        mine = self._encoder_modules()
        old = self._encoder_modules(self.teacher)
        if self._encoder_shared is None:  # first check, or after _apply
            self._stamp_dicts = _tensor_dicts(mine + old)
        stamp = _write_stamp(self._stamp_dicts)
        if self._encoder_shared is None or stamp != self._encoder_stamp:
            # Any write since the last check: compare the values again.
            self._encoder_stamp = stamp
            self._encoder_shared = all(
                _same_state(a, b) for a, b in zip(mine, old))
            if not self._encoder_shared:
                print_log(
                    'EF: the frozen encoder differs from the teacher\'s '
                    '(another checkpoint was loaded); the teacher runs its '
                    'own encoder.',
                    logger='current',
                    level=logging.WARNING)
        return self._encoder_shared

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """L_CE + lambda'_D L'_D + lambda''_D L''_D of a batch.

        Args:
            inputs (Tensor): Input images of shape (N, 3, H, W).
            data_samples (list[:obj:`SegDataSample`]): With ``gt_sem_seg``
                (output indices of S_k, 255 = ignore).

        Returns:
            dict[str, Tensor]: ``decode.*`` (and ``aux.*``) from the heads,
            ``distill.*`` from L'_D and L''_D.
        """
        pod = self.distill_pod is not None
        stages, feats = self._encode(inputs)
        # One student forward; POD also takes the classifier's input.
        seg_logits, pre_logits = head_forward(
            self.decode_head, feats, capture=pod)
        teacher = None
        if self.pseudo_label is not None:
            teacher = self._teacher_outputs(inputs, feats, data_samples,
                                            stages)
            losses = add_prefix(
                self._pseudo_label_loss(seg_logits, teacher.logits,
                                        data_samples), 'decode')
        else:
            losses = add_prefix(
                head_loss_by_feat(self.decode_head, seg_logits, data_samples),
                'decode')
        if self.with_auxiliary_head:
            losses.update(
                self._auxiliary_head_forward_train(feats, data_samples))
        if self.distill_output is not None or \
                self.distill_feature is not None or pod:
            losses.update(
                add_prefix(
                    self._distill_loss(
                        inputs,
                        feats,
                        seg_logits,
                        data_samples,
                        teacher=teacher,
                        stages=stages,
                        pre_logits=pre_logits), 'distill'))
        return losses

    def _encode(self,
                inputs: Tensor) -> Tuple[Sequence[Tensor], Sequence[Tensor]]:
        """The backbone's outputs (POD's stages) and the features the heads
        read: the same unless POD is on and there is a neck."""
        if self.distill_pod is None or not self.with_neck:
            feats = self.extract_feat(inputs)
            return feats, feats
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and not self.freeze_encoder):
            stages = self.backbone(inputs)
            return stages, self.neck(stages)

    def _old_logits(self, logits: Tensor) -> Tensor:
        """The teacher's logits of the C_old classes (all of them unless
        the classifier is fixed)."""
        if logits.shape[1] == self.num_old_classes:
            return logits
        return logits[:, :self.num_old_classes]

    def _distill_loss(self,
                      inputs: Tensor,
                      feats: Sequence[Tensor],
                      seg_logits: Tensor,
                      data_samples: SampleList,
                      teacher: Optional[TeacherOutputs] = None,
                      stages: Optional[Sequence[Tensor]] = None,
                      pre_logits: Optional[Tensor] = None) -> dict:
        """L'_D (or MiB's KD), L''_D and POD against the teacher's outputs
        on the batch (computed here unless given)."""
        if teacher is None:
            teacher = self._teacher_outputs(inputs, feats, data_samples,
                                            stages)
        teacher_feats, teacher_logits = teacher.feats, teacher.logits
        losses = dict()
        if self.distill_output is not None:
            seg_label = torch.stack(
                [sample.gt_sem_seg.data for sample in data_samples])
            if isinstance(self.distill_output, UnbiasedDistillLoss):
                losses[self.distill_output.loss_name] = self.distill_output(
                    seg_logits,
                    self._old_logits(teacher_logits),
                    seg_label=seg_label)
            else:
                extra = dict(
                    num_old_classes=self.num_old_classes) if isinstance(
                        self.distill_output, OutputDistillLoss) else dict()
                losses[self.distill_output.loss_name] = self.distill_output(
                    seg_logits, teacher_logits, seg_label, **extra)
        if self.distill_pod is not None:
            losses[self.distill_pod.loss_name] = self._pod_loss(
                feats if stages is None else stages, pre_logits, seg_logits,
                teacher)
        if self.distill_feature is not None:
            student = self.decode_head._transform_inputs(feats)
            old = self.teacher.decode_head._transform_inputs(teacher_feats)
            if isinstance(student, Tensor):
                student, old = [student], [old]
            losses[self.distill_feature.loss_name] = sum(
                self.distill_feature(s, t)
                for s, t in zip(student, old)) / len(student)
        return losses

    def _pod_loss(self, stages: Sequence[Tensor], pre_logits: Optional[Tensor],
                  seg_logits: Tensor, teacher: TeacherOutputs) -> Tensor:
        """PLOP's Local POD over the backbone outputs, the decoder's output
        before its classifier (where the head has one) and the logits at
        the features' resolution, scaled by sqrt(|S_k| / |U_k|)."""
        student = list(stages)
        old = list(teacher.stages)
        if pre_logits is not None and teacher.pre_logits is not None:
            student.append(pre_logits)
            old.append(teacher.pre_logits)
        student.append(seg_logits)
        old.append(self._old_logits(teacher.logits))
        with torch.autocast(seg_logits.device.type, enabled=False):
            return self.distill_pod(
                student,
                old,
                num_classes=self.num_seen_classes,
                num_new_classes=self.num_seen_classes - self.num_old_classes)

    def _pseudo_label_loss(self, seg_logits: Tensor, teacher_logits: Tensor,
                           data_samples: SampleList) -> dict:
        """The decode head's loss on PLOP's pseudo-labels, each image's
        pixels weighted by its adaptive factor."""
        if self._pseudo_label_fit is None:
            raise RuntimeError(
                'pseudo_label needs the entropy thresholds of this step '
                "before training: add dict(type='PseudoLabelHook') to "
                'custom_hooks (the experiment does) or call '
                'model.fit_pseudo_label_thresholds(batches) first.')
        head = self.decode_head
        if not has_mmseg_loss_by_feat(head):
            raise TypeError(
                f'{type(head).__name__} overrides loss_by_feat; pseudo-labels '
                "are supported for heads that use BaseDecodeHead's.")
        seg_label = head._stack_batch_gt(data_samples)[:, 0]
        old = upsample_to(
            self._old_logits(teacher_logits), seg_label.shape[-2:],
            head.align_corners)
        thresholds, max_entropy = self._pseudo_label_fit
        device = old.device
        if device not in self._thresholds_on:
            self._thresholds_on[device] = thresholds.to(device)
        labels, factor = plop_pseudo_label(
            old,
            seg_label,
            self.num_old_classes,
            self._thresholds_on[device],
            max_entropy,
            ignore_index=head.ignore_index)
        weight = None
        if self.pseudo_label['adaptive_factor']:
            weight = factor[:, None, None].expand(labels.shape)
        losses = decode_loss_by_feat(head, seg_logits, labels, weight)
        losses['pseudo_factor'] = factor.mean()  # logged, not a loss
        return losses

    @torch.no_grad()
    def fit_pseudo_label_thresholds(
            self, batches: Iterable[Tuple[Tensor, SampleList]]) -> Tensor:
        """PLOP's per-class entropy thresholds of this step, from the
        teacher over ``batches`` of preprocessed ``(inputs,
        data_samples)`` (the step's training images, their augmentation
        included), and use them from now on.

        The teacher's logits (C_old outputs) are upsampled to the labels;
        pixels labelled 0 count; |S_k| histograms (PLOP's
        ``find_median``, :func:`plop_entropy_thresholds`). Costs one
        teacher forward per image, no backward.

        Returns:
            Tensor: The |S_k| thresholds (float32, CPU).
        """
        if self.pseudo_label is None:
            raise ValueError('fit_pseudo_label_thresholds: this model has '
                             'no pseudo_label.')
        align_corners = self.teacher.decode_head.align_corners

        def teacher_batches():
            for inputs, data_samples in batches:
                teacher = self._runnable_teacher(inputs.device.type)
                logits = teacher.decode_head.forward(
                    teacher.extract_feat(inputs))
                label = self.decode_head._stack_batch_gt(data_samples)[:, 0]
                yield upsample_to(
                    self._old_logits(logits), label.shape[-2:],
                    align_corners), label

        cfg = self.pseudo_label
        thresholds, max_entropy = plop_entropy_thresholds(
            teacher_batches(),
            self.num_seen_classes,
            threshold=cfg['threshold'],
            num_bins=cfg['num_bins'],
            median_rule=cfg['median_rule'])
        self.set_pseudo_label_thresholds(thresholds, max_entropy)
        return self._pseudo_label_fit[0]

    def set_pseudo_label_thresholds(self, thresholds: Sequence[float],
                                    max_entropy: float) -> None:
        """Use these |S_k| thresholds and entropy normaliser."""
        thresholds = torch.as_tensor(
            thresholds, dtype=torch.float32).detach().cpu().reshape(-1)
        if thresholds.numel() != self.num_seen_classes:
            raise ValueError(f'Got {thresholds.numel()} pseudo-label '
                             f'thresholds; need |S_k| = '
                             f'{self.num_seen_classes}.')
        self._pseudo_label_fit = (thresholds, float(max_entropy))
        self._thresholds_on = {}

    def pseudo_label_state(self) -> Optional[dict]:
        """The fitted thresholds as plain data (checkpoints), or None."""
        if self._pseudo_label_fit is None:
            return None
        thresholds, max_entropy = self._pseudo_label_fit
        return dict(
            thresholds=thresholds.tolist(),
            max_entropy=max_entropy,
            num_seen_classes=self.num_seen_classes,
            num_old_classes=self.num_old_classes,
            pseudo_label=dict(self.pseudo_label))

    def load_pseudo_label_state(self, state: Optional[dict]) -> bool:
        """Use thresholds from :meth:`pseudo_label_state` if they were
        fitted for this step's classes and settings; whether they were."""
        if self.pseudo_label is None or not isinstance(state, dict):
            return False
        if (state.get('num_seen_classes') != self.num_seen_classes
                or state.get('num_old_classes') != self.num_old_classes
                or state.get('pseudo_label') != dict(self.pseudo_label)):
            return False
        self.set_pseudo_label_thresholds(state['thresholds'],
                                         state['max_entropy'])
        return True

    @torch.no_grad()
    def _teacher_outputs(
            self,
            inputs: Tensor,
            feats: Sequence[Tensor],
            data_samples: SampleList,
            stages: Optional[Sequence[Tensor]] = None) -> TeacherOutputs:
        """M_{k-1}'s features (for L''_D), logits (for L'_D, MiB's KD,
        PLOP), backbone outputs and classifier input (for POD), each None
        when no loss needs it."""
        try:
            if self.teacher_cache is not None:
                return TeacherOutputs(
                    None,
                    self._cached_teacher_logits(inputs, feats, data_samples))
            pod = self.distill_pod is not None
            if pod and self.with_neck:
                teacher_stages, teacher_feats = self._teacher_encoder(
                    inputs, stages, feats)
            else:
                teacher_feats = self._teacher_features(inputs, feats)
                teacher_stages = teacher_feats
            teacher_logits = pre_logits = None
            if self.distill_output is not None or pod or \
                    self.pseudo_label is not None:
                teacher_logits, pre_logits = head_forward(
                    self._runnable_teacher(inputs.device.type).decode_head,
                    teacher_feats,
                    capture=pod)
            return TeacherOutputs(teacher_feats, teacher_logits,
                                  teacher_stages, pre_logits)
        except RuntimeError as error:
            if not isinstance(self._low_precision, tuple) or \
                    'type' not in str(error):
                raise
            # A module that leaves autocast (an fp32 input meets a cast
            # weight): run the fp32 teacher under autocast from now on.
            print_log(
                'The teacher\'s low-precision copy failed under autocast '
                f'({error}); the fp32 teacher runs instead.',
                logger='current',
                level=logging.WARNING)
            self._low_precision = False
            return self._teacher_outputs(inputs, feats, data_samples, stages)

    def _teacher_encoder(self, inputs: Tensor, stages: Sequence[Tensor],
                         feats: Sequence[Tensor]) -> tuple:
        """The teacher's backbone outputs and neck outputs (POD with a
        neck); the student's where EF shares the encoder."""
        if self._teacher_shares_encoder():
            return stages, feats
        teacher = self._runnable_teacher(inputs.device.type)
        teacher_stages = teacher.backbone(inputs)
        return teacher_stages, teacher.neck(teacher_stages)

    def _teacher_features(self,
                          inputs: Tensor,
                          feats: Sequence[Tensor],
                          index: Optional[Tensor] = None) -> Sequence[Tensor]:
        """The teacher's encoder features of ``inputs`` (of the images
        ``index`` only, if given); the student's own ``feats`` where EF
        shares the encoder."""
        if self._teacher_shares_encoder():
            return feats if index is None else [
                f.index_select(0, index) for f in feats
            ]
        if index is not None:
            inputs = inputs.index_select(0, index)
        return self._runnable_teacher(inputs.device.type).extract_feat(inputs)

    def _cached_teacher_logits(self, inputs: Tensor, feats: Sequence[Tensor],
                               data_samples: SampleList) -> Tensor:
        """Teacher logits of the batch: replayed from ``teacher_cache``
        where it holds the image with this very input; computed (for those
        images only: the teacher is in eval mode, images are independent)
        and stored otherwise."""
        cache = self.teacher_cache
        keys = [sample.metainfo.get('img_path') for sample in data_samples]
        sums = input_checksums(inputs)
        found = cache.lookup(keys, sums)
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            index = None if len(missing) == len(found) else torch.tensor(
                missing, device=inputs.device)
            live = self._runnable_teacher(
                inputs.device.type).decode_head.forward(
                    self._teacher_features(inputs, feats, index))
            for row, i in enumerate(missing):
                # Entries are replayed in fp16: use the rounded values now
                # too, so that every epoch sees the same teacher.
                if cache.can_store(keys[i]) and cache.store(
                        keys[i], sums[i], live[row]):
                    found[i] = live[row].half()
                else:
                    found[i] = live[row]
        return torch.stack([
            f.to(inputs.device, torch.float32, non_blocking=True)
            for f in found
        ])

    def _set_teacher_layout(self, device_type: Optional[str] = None) -> None:
        """channels_last on the CPU (oneDNN's own layout: the teacher's
        forward measured ~17 % faster) and wherever the student is
        channels_last (``ChannelsLastHook``); contiguous elsewhere."""
        if device_type is None:
            tensor = next(self.teacher.parameters(), None)
            device_type = 'cpu' if tensor is None else tensor.device.type
        nhwc = device_type == 'cpu' or _is_channels_last(self)
        self.teacher.to(memory_format=torch.channels_last if nhwc else torch.
                        contiguous_format)
        self._teacher_layout = device_type

    def _runnable_teacher(self, device_type: str) -> EncoderDecoder:
        """M_{k-1} as it runs on ``device_type`` now (see "Speed")."""
        if torch.is_autocast_enabled(device_type) and \
                self._low_precision is not False:
            dtype = torch.get_autocast_dtype(device_type)
            if self._low_precision is None or \
                    self._low_precision[0] != dtype:
                self._low_precision = (dtype,
                                       _low_precision_copy(
                                           self.teacher,
                                           dtype,
                                           channels_last=True))
            return self._low_precision[1]
        if self._teacher_layout != device_type:
            self._set_teacher_layout(device_type)
        return self.teacher


def _is_channels_last(model: nn.Module) -> bool:
    """Whether ``model``'s first 4-D weight is in the channels-last layout
    (and not also contiguous, as a 1x1 kernel is in both)."""
    for param in model.parameters():
        if param.dim() == 4 and param.shape[-2:] != (1, 1):
            return param.is_contiguous(memory_format=torch.channels_last
                                       ) and not param.is_contiguous()
    return False


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    """Whether two modules hold bit-identical parameters and buffers (one
    device sync for all tensors)."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(
            sa[k].dtype != sb[k].dtype or sa[k].shape != sb[k].shape
            or sa[k].device != sb[k].device for k in sa):
        return False
    if not sa:
        return True
    return bool(torch.stack([(sa[k] == sb[k]).all() for k in sa]).all().item())


def _tensor_dicts(modules: Sequence[nn.Module]) -> List[dict]:
    """The ``_parameters`` and ``_buffers`` dicts of every submodule of
    ``modules``: walked once (``modules()`` recursion was ~40 % of an EF
    step's Python time), read by :func:`_write_stamp` at every step."""
    return [
        d for root in modules for m in root.modules()
        for d in (m._parameters, m._buffers) if d
    ]


def _write_stamp(dicts: Sequence[dict]) -> tuple:
    """Identity, storage and version counter of every parameter and buffer
    in ``dicts`` (:func:`_tensor_dicts`).

    Any in-place write (``copy_`` in ``load_state_dict``, an optimizer step,
    a hook's edit) bumps a tensor's version counter; replacing a tensor or
    its ``.data`` changes its identity or storage (a dict holds the module's
    current tensors). Equal stamps therefore mean no tensor was written in
    between, read without a device sync.
    """
    return tuple((id(t), t.data_ptr(), t._version) for d in dicts
                 for t in d.values() if t is not None)
