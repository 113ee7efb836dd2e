"""M_k trained from M_{k-1}: the lean base segmentor of every method.

A method is a dict of distillation terms (:mod:`..terms`): ILT's L'_D and
L''_D, MiB's unbiased CE and KD, PLOP's Local POD and pseudo-labels, or a
user's own. This class owns what all of them share: the teacher, the
classifier growth, EF's shared encoder, and running the teacher fast.
"""
import copy
import logging
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import load_state_dict
from torch import Tensor

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig, SampleList,
                         add_prefix)
from ..decode_heads.loss_by_feat import head_loss_by_feat
from ..terms.base import (DistillBatch, DistillTerm, TeacherOutputs,
                          term_class)
from ..utils import NEW_CLASS_INITS, grow_classifier_, infer_num_old_classes
from ..utils.encoder_guard import SharedEncoderGuard
from ..utils.stages import PreActivationCapture, head_forward
from ..utils.teacher import (is_channels_last, low_precision_copy,
                             read_state_dict, with_num_classes,
                             without_pretrained)
from ..utils.teacher_cache import (TeacherCache, input_checksums,
                                   state_fingerprint)

TermConfigs = Union[Mapping[str, ConfigType], Sequence[ConfigType], None]


def term_configs(distill_terms: TermConfigs) -> Dict[str, dict]:
    """``distill_terms`` as an ordered ``name -> config`` dict (a list is
    named by position); entries set to None are dropped (how a config
    switches off a term it inherited)."""
    if distill_terms is None:
        return {}
    if isinstance(distill_terms, Mapping):
        items = list(distill_terms.items())
    else:
        items = [(str(i), cfg) for i, cfg in enumerate(distill_terms)]
    return {
        str(name): copy.deepcopy(dict(cfg))
        for name, cfg in items if cfg is not None
    }


@MODELS.register_module()
class IncrementalEncoderDecoder(EncoderDecoder):
    """Step k's segmentor: M_k learns U_k while M_{k-1} teaches S_{k-1}.

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

     loss(): encoder -> (stages, feats) -> decode_head -> seg_logits
             -> decode loss: mmseg's loss_by_feat (L_CE), or the one term
                that replaces it (PLOP's pseudo-labels)
             -> teacher_outputs(): M_{k-1} under no_grad, only what the
                terms declared (features, logits, stages, pre-logits,
                stages before their last activation);
                logits from the teacher_cache where it has them
             -> term.loss() of every term, logged as distill.<name>

    The loss is L = L_CE + sum of the terms' losses (each weighted by its
    own ``loss_weight``): ILT's L = L_CE + lambda'_D L'_D + lambda''_D
    L''_D (Eq. 1-4) is ``OutputDistillTerm`` + ``FeatureDistillTerm``.

    EF (``freeze_encoder=True``): the backbone and neck get
    ``requires_grad=False`` at construction (so DDP, built later, neither
    registers nor waits for them), stay in eval mode (BN statistics fixed)
    and run under ``torch.no_grad()``. While the student's encoder equals
    the teacher's, the encoder runs once per batch and both heads read its
    features (:class:`~..utils.encoder_guard.SharedEncoderGuard` re-checks
    the equality whenever a tensor of either encoder was written).

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
        distill_terms (dict | list, optional): The method: ``name -> term
            config`` (registered :class:`~..terms.DistillTerm` types); a
            None entry is dropped. None or empty: plain fine-tuning (FT).
            Defaults to None.
        freeze_encoder (bool): EF. Defaults to False.
        new_class_init (str): ``'default'`` (fresh init of the U_k rows) or
            ``'background'`` (MiB, PLOP). Defaults to ``'default'``.
        num_old_classes (int, optional): C_old = |S_{k-1}|. When given, the
            teacher checkpoint's class count must equal it -- unless the
            checkpoint has as many outputs as the student: then the
            classifier is *fixed* (the authors' code: every class has an
            output from step 0 on, nothing grows), the student starts as an
            exact copy of M_{k-1}, and C_old, which L'_D's pixel mask needs,
            comes from here. Defaults to None.
        num_seen_classes (int, optional): |S_k|, for terms that declare
            ``needs_num_seen_classes``; needed only with a fixed classifier
            (else it is ``num_classes``). Defaults to None.
        teacher_cache (dict, optional): Replay M_{k-1}'s logits: the first
            time a training image (``img_path``) comes, the teacher runs
            and its logits are stored in fp16 at their own resolution with
            a checksum of the input; later visits read them back. Needs
            one fixed augmentation per image (the training dataset's
            ``augment_seed``, which the experiment sets); an image whose
            input differs from its entry runs the teacher live (one
            warning). Keys: ``dir`` (folder of per-process files, reused by
            a resumed step; None: in memory; the experiment sets
            ``<step work dir>/teacher_cache``) and ``max_size_mb``
            (default 1024; beyond it the teacher runs live). Only when the
            terms need the teacher's logits and nothing else. Defaults to
            None.
        neck, auxiliary_head, train_cfg, test_cfg, data_preprocessor,
        pretrained, init_cfg: As ``EncoderDecoder`` (``pretrained`` is
            ignored, see ``backbone``).
    """

    #: The arguments a plain ``EncoderDecoder`` lacks: deployment drops
    #: them (:func:`~mmseg_incremental.planning.deploy_config`).
    TRAINING_ONLY_KEYS = ('teacher_checkpoint', 'distill_terms',
                          'freeze_encoder', 'new_class_init',
                          'num_old_classes', 'num_seen_classes',
                          'teacher_cache')

    #: Hooks a step needs with EF (planning adds them, deployment drops
    #: them); the terms declare their own (``DistillTerm.training_hooks``).
    FREEZE_ENCODER_HOOKS = ('FreezeEncoderHook', )

    @classmethod
    def term_configs(cls, model_cfg: Mapping) -> Dict[str, dict]:
        """The ``name -> term config`` of a model config of this class."""
        return term_configs(model_cfg.get('distill_terms'))

    @classmethod
    def training_hooks(cls, model_cfg: Mapping) -> Tuple[str, ...]:
        """The hook types a step of this model config needs: EF's and
        every term's, in order, without repeats."""
        hooks = list(cls.FREEZE_ENCODER_HOOKS) \
            if model_cfg.get('freeze_encoder') else []
        for cfg in cls.term_configs(model_cfg).values():
            hooks += [
                h for h in term_class(cfg).training_hooks if h not in hooks
            ]
        return tuple(hooks)

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
                 distill_terms: TermConfigs = None,
                 freeze_encoder: bool = False,
                 new_class_init: str = 'default',
                 num_old_classes: Optional[int] = None,
                 num_seen_classes: Optional[int] = None,
                 teacher_cache: OptConfigType = None) -> None:
        name = type(self).__name__
        if not teacher_checkpoint:
            raise ValueError(f'{name} needs teacher_checkpoint, the '
                             'checkpoint of M_{k-1}; at step 0 use a '
                             "plain 'EncoderDecoder'.")
        if new_class_init not in NEW_CLASS_INITS:
            raise ValueError(f'new_class_init={new_class_init!r} is unknown; '
                             "use 'default' (fresh rows) or 'background' "
                             '(MiB).')
        if pretrained is not None:
            print_log(
                f'{name} ignores pretrained={pretrained!r}: every weight '
                'comes from the teacher checkpoint.',
                logger='current',
                level=logging.INFO)
        terms = term_configs(distill_terms)
        classes = {key: term_class(cfg) for key, cfg in terms.items()}
        _check_terms(classes, teacher_cache)
        nets = dict(
            backbone=without_pretrained(backbone),
            neck=neck,
            decode_head=decode_head,
            auxiliary_head=auxiliary_head)
        for cls in classes.values():  # e.g. POD asks for every stage
            nets = cls.adapt_model_cfg(nets)
        teacher_cfg = dict(
            type='EncoderDecoder',
            backbone=copy.deepcopy(nets['backbone']),
            neck=copy.deepcopy(nets['neck']),
            decode_head=nets['decode_head'],
            auxiliary_head=nets['auxiliary_head'],
            train_cfg=copy.deepcopy(train_cfg),
            test_cfg=copy.deepcopy(test_cfg),
            data_preprocessor=copy.deepcopy(data_preprocessor))
        super().__init__(
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
            **nets)
        self.teacher_checkpoint = teacher_checkpoint
        self.new_class_init = new_class_init
        self.freeze_encoder = bool(freeze_encoder)
        teacher = self._load_teacher(teacher_cfg, teacher_checkpoint,
                                     num_old_classes)
        # A tuple hides M_{k-1} from nn.Module's registration (see above).
        self._teacher = (teacher, )
        grow_classifier_(self, teacher.state_dict(), self.teacher_classes,
                         new_class_init)
        self._guard = SharedEncoderGuard()
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
        self.num_seen_classes = self._seen_classes(num_seen_classes, classes)
        self.distill_terms = nn.ModuleDict({
            key: MODELS.build(cfg)
            for key, cfg in terms.items()
        })
        for term in self.distill_terms.values():
            term.setup(self)
            if any(True for _ in term.state_dict()):
                raise ValueError(
                    f'{type(term).__name__} holds parameters or buffers; '
                    "they would change the keys of M_k's checkpoint.")
        self._needs = _union(classes.values(), 'teacher_needs')
        self._student_needs = _union(classes.values(), 'student_needs')
        self._decode_term = next(
            (t for t in self.distill_terms.values() if t.replaces_decode_loss),
            None)
        self._shares_label_logits = any(t.reads_label_logits
                                        for t in self.distill_terms.values())
        self._reads_pre_act = any(t.reads_pre_act_stages
                                  for t in self.distill_terms.values())

    # --- construction ------------------------------------------------------
    def _load_teacher(self, teacher_cfg: dict, checkpoint: str,
                      num_old_classes: Optional[int]) -> EncoderDecoder:
        """Build M_{k-1} with C_old classes (read off its checkpoint) and
        load it strictly; frozen, in eval mode. Sets ``num_old_classes``
        and ``teacher_classes`` (its outputs)."""
        teacher_state = read_state_dict(checkpoint)
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
            decode_head=with_num_classes(teacher_cfg['decode_head'],
                                         c_teacher),
            auxiliary_head=with_num_classes(teacher_cfg['auxiliary_head'],
                                            c_teacher))
        teacher = revert_sync_batchnorm(MODELS.build(teacher_cfg))
        load_state_dict(teacher, teacher_state, strict=True)
        teacher.requires_grad_(False)
        teacher.eval()
        return teacher

    def _seen_classes(self, num_seen_classes: Optional[int],
                      classes: Dict[str, type]) -> int:
        """|S_k|: the outputs, unless the classifier is fixed (then given
        by planning for the terms that need it)."""
        fixed = self.teacher_classes == self.num_classes
        if num_seen_classes is None:
            needing = [
                k for k, c in classes.items() if c.needs_num_seen_classes
            ]
            if fixed and needing:
                raise ValueError(
                    f'The terms {needing} need |S_k|; with a fixed '
                    'classifier (every output from step 0) pass '
                    'num_seen_classes=|S_k| (the experiment does).')
            return self.num_classes
        if not self.num_old_classes < num_seen_classes <= self.num_classes \
                or (not fixed and num_seen_classes != self.num_classes):
            raise ValueError(
                f'num_seen_classes={num_seen_classes} must be |S_k|: more '
                f'than C_old={self.num_old_classes}, at most the '
                f'{self.num_classes} outputs (equal to them when the '
                'classifier grows).')
        return int(num_seen_classes)

    # --- what terms read ---------------------------------------------------
    @property
    def teacher(self) -> EncoderDecoder:
        """EncoderDecoder: M_{k-1} (frozen, eval mode, not a submodule)."""
        return self._teacher[0]

    def terms_of_type(self, cls: type) -> List[DistillTerm]:
        """The terms of this step that are instances of ``cls``."""
        return [t for t in self.distill_terms.values() if isinstance(t, cls)]

    def old_logits(self, logits: Tensor) -> Tensor:
        """The teacher's logits of the C_old classes (all of them unless
        the classifier is fixed)."""
        if logits.shape[1] == self.num_old_classes:
            return logits
        return logits[:, :self.num_old_classes]

    # --- nn.Module ---------------------------------------------------------
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
        self._guard.reset()

    def train(self, mode: bool = True) -> 'IncrementalEncoderDecoder':
        """Set the student's mode; the teacher (and under EF the encoder)
        stays in eval mode."""
        super().train(mode)
        if '_teacher' in self.__dict__:
            self.teacher.eval()
        if getattr(self, 'freeze_encoder', False):
            for module in self._encoder_modules():
                module.eval()
        return self

    def _apply(self, fn, *args, **kwargs) -> 'IncrementalEncoderDecoder':
        """Apply ``fn`` (device/dtype moves) to the teacher as well."""
        super()._apply(fn, *args, **kwargs)
        if '_teacher' in self.__dict__:
            self.teacher._apply(fn, *args, **kwargs)
            self._guard.reset()
            self._set_teacher_layout()
            if self._low_precision is not False:
                self._low_precision = None
        return self

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """The student's encoder features (no graph under EF)."""
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and not self.freeze_encoder):
            return super().extract_feat(inputs)

    # --- training ----------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """L_CE (or the replacing term's decode loss) plus every term's
        losses on a batch.

        Args:
            inputs (Tensor): Input images of shape (N, 3, H, W).
            data_samples (list[:obj:`SegDataSample`]): With ``gt_sem_seg``
                (output indices of S_k, 255 = ignore).

        Returns:
            dict[str, Tensor]: ``decode.*`` (and ``aux.*``) from the heads,
            ``distill.*`` from the terms.
        """
        stages, feats, pre_act = self._encode(inputs)
        # One student forward; terms may also take the classifier's input.
        seg_logits, pre_logits = head_forward(
            self.decode_head,
            feats,
            capture='pre_logits' in self._student_needs)
        # memo: what the decode loss and the terms share in this call.
        batch = DistillBatch(inputs, data_samples, stages,
                             feats, seg_logits, pre_logits,
                             TeacherOutputs(None, None), {}, pre_act)
        # M_{k-1} runs once, before the first term that reads it.
        taught = not self._needs
        if self._decode_term is not None:
            if not taught:
                batch = batch._replace(teacher=self.teacher_outputs(batch))
                taught = True
            losses = add_prefix(
                self._decode_term.decode_loss(self, batch), 'decode')
        else:
            # A term reading the student's logits at the labels' size
            # (MiB's KD) shares their upsampling with the decode loss.
            losses = add_prefix(
                head_loss_by_feat(
                    self.decode_head, seg_logits, data_samples,
                    batch if self._shares_label_logits else None), 'decode')
        if self.with_auxiliary_head:
            losses.update(
                self._auxiliary_head_forward_train(feats, data_samples))
        for term in self.distill_terms.values():
            if term.replaces_decode_loss:
                continue
            if not taught:
                batch = batch._replace(teacher=self.teacher_outputs(batch))
                taught = True
            losses.update(add_prefix(term.loss(self, batch), 'distill'))
        return losses

    def _encode(self, inputs: Tensor) -> tuple:
        """The backbone's outputs and the features the heads read (the
        same unless a term needs the stages and there is a neck), and the
        stage outputs before their last activation where a term reads
        them (else None)."""
        with PreActivationCapture(self.backbone,
                                  self._reads_pre_act) as capture:
            if 'stages' not in self._student_needs or not self.with_neck:
                stages = feats = self.extract_feat(inputs)
            else:
                with torch.set_grad_enabled(torch.is_grad_enabled()
                                            and not self.freeze_encoder):
                    stages = self.backbone(inputs)
                    feats = self.neck(stages)
        return stages, feats, capture.stages

    # --- the teacher -------------------------------------------------------
    @torch.no_grad()
    def teacher_outputs(self, batch: DistillBatch) -> TeacherOutputs:
        """M_{k-1}'s outputs on the batch that the terms declared
        (``teacher_needs``); None elsewhere."""
        try:
            return self._teacher_outputs(batch)
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
            return self._teacher_outputs(batch)

    def _teacher_outputs(self, batch: DistillBatch) -> TeacherOutputs:
        inputs, feats = batch.inputs, batch.feats
        if self.teacher_cache is not None:
            return TeacherOutputs(
                None,
                self._cached_teacher_logits(inputs, feats, batch.data_samples))
        needs = self._needs
        teacher_stages, teacher_feats, pre_act = self._teacher_encoder(batch)
        teacher_logits = pre_logits = None
        if needs & {'logits', 'pre_logits'}:
            teacher_logits, pre_logits = head_forward(
                self.runnable_teacher(inputs.device.type).decode_head,
                teacher_feats,
                capture='pre_logits' in needs)
        return TeacherOutputs(teacher_feats, teacher_logits, teacher_stages,
                              pre_logits, pre_act)

    def _teacher_shares_encoder(self) -> bool:
        """Whether the student's encoder provably computes the teacher's
        features: EF and bit-identical parameters and buffers."""
        if not self.freeze_encoder:
            return False
        shared, fresh = self._guard.shared(self._encoder_modules(),
                                           self._encoder_modules(self.teacher))
        if fresh and not shared:
            print_log(
                'EF: the frozen encoder differs from the teacher\'s '
                '(another checkpoint was loaded); the teacher runs its '
                'own encoder.',
                logger='current',
                level=logging.WARNING)
        return shared

    def _teacher_encoder(self, batch: DistillBatch) -> tuple:
        """The teacher's backbone outputs, the features its heads read
        (the same unless the terms need the stages and there is a neck)
        and, where a term reads them, its stage outputs before their last
        activation; the student's where EF shares the encoder."""
        if self._teacher_shares_encoder():
            return batch.stages, batch.feats, batch.pre_act_stages
        inputs = batch.inputs
        teacher = self.runnable_teacher(inputs.device.type)
        with PreActivationCapture(teacher.backbone,
                                  self._reads_pre_act) as capture:
            if 'stages' in self._needs and self.with_neck:
                stages = teacher.backbone(inputs)
                feats = teacher.neck(stages)
            else:
                stages = feats = teacher.extract_feat(inputs)
        return stages, feats, capture.stages

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
        return self.runnable_teacher(inputs.device.type).extract_feat(inputs)

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
            live = self.runnable_teacher(
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
        nhwc = device_type == 'cpu' or is_channels_last(self)
        self.teacher.to(memory_format=torch.channels_last if nhwc else torch.
                        contiguous_format)
        self._teacher_layout = device_type

    def runnable_teacher(self, device_type: str) -> EncoderDecoder:
        """M_{k-1} as it runs on ``device_type`` now (see "Speed"): its
        low-precision copy under autocast, else itself in the layout of
        the device."""
        if torch.is_autocast_enabled(device_type) and \
                self._low_precision is not False:
            dtype = torch.get_autocast_dtype(device_type)
            if self._low_precision is None or \
                    self._low_precision[0] != dtype:
                self._low_precision = (dtype,
                                       low_precision_copy(
                                           self.teacher,
                                           dtype,
                                           channels_last=True))
            return self._low_precision[1]
        if self._teacher_layout != device_type:
            self._set_teacher_layout(device_type)
        return self.teacher


def _union(classes, attribute: str) -> frozenset:
    """The union of a declaration over term classes."""
    out = frozenset()
    for cls in classes:
        out |= frozenset(getattr(cls, attribute))
    return out


def _check_terms(classes: Dict[str, type],
                 teacher_cache: OptConfigType) -> None:
    """One clear error for each impossible combination of terms."""
    deciders = [k for k, c in classes.items() if c.replaces_decode_loss]
    if len(deciders) > 1:
        raise ValueError(f'The terms {deciders} all replace the decode loss; '
                         'keep one.')
    if teacher_cache is None:
        return
    needs = _union(classes.values(), 'teacher_needs')
    if 'logits' not in needs or needs - {'logits'}:
        raise ValueError(
            "teacher_cache replays the teacher's logits; it needs a term "
            "that reads them (L'_D, MiB's KD, PLOP's pseudo-labels) and "
            "no term that reads the teacher's features or stages (L''_D "
            'and POD need them at every iteration, so the cache would save '
            f'only its head); the terms need {sorted(needs)}. Set '
            'teacher_cache=None.')
    unknown = set(teacher_cache) - {'dir', 'max_size_mb'}
    if unknown:
        raise ValueError(f'teacher_cache got {sorted(unknown)}; it takes '
                         "'dir' and 'max_size_mb'.")
