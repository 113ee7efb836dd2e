"""The incremental protocol shared by every dataset: which images and labels
a step sees (docs/design.md §1).

Notation: step k learns U_k; S_{k-1} are the classes learnt before, S_k =
S_{k-1} ∪ U_k, F_k the classes of no step so far; fg(img) = the labels of an
image except 0 (background) and 255 (void).

Training split of step k (``test_mode=False``), by ``setting``:

============  =================================  =========  ==============
setting       image kept when                    old pixels future pixels
============  =================================  =========  ==============
sequential    fg ∩ U_k ≠ ∅ and fg ⊆ S_k          kept       (none present)
disjoint      fg ∩ U_k ≠ ∅ and fg ⊆ S_k          → 0        (none present)
overlapped    fg ∩ U_k ≠ ∅                       → 0        → 0
============  =================================  =========  ==============

Validation split after step k (``test_mode=True``), by ``eval_protocol``:

====================  =========================  ========================
eval_protocol         image kept when            pixels of unseen classes
====================  =========================  ========================
seen_only             fg ⊆ S_k                   (none present)
mask_unseen           fg ∩ (S_k \\ {0}) ≠ ∅       → 255 (ignored)
unseen_as_background  fg ∩ (S_k \\ {0}) ≠ ∅       → 0
====================  =========================  ========================

Classes of S_k are remapped to their output index (their position in the
task's class order), 255 stays 255. The label map goes through mmseg's own
path: ``data_info['label_map']`` applied by ``LoadAnnotations``.
"""
import hashlib
import os
import os.path as osp
import random
import zlib
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..tasks import NUM_CLASSES, IncrementalTask, TaskSpec, get_task
from ..utils.randomness import preserved_rng
from .class_presence import MaskScan, scan_masks

SETTINGS = ('sequential', 'disjoint', 'overlapped')
EVAL_PROTOCOLS = ('seen_only', 'mask_unseen', 'unseen_as_background')
IGNORE = 255


#: Files named in one error about bad data (the count names the rest).
MAX_NAMED = 5


def image_id(path: str) -> str:
    """An image's id: its file name without the extension."""
    return osp.splitext(osp.basename(path))[0]


def _check_choice(kind: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f'Unknown {kind} {value!r}; use one of '
                         f'{", ".join(choices)}.')


def incremental_label_map(task: IncrementalTask, step: int, setting: str,
                          eval_protocol: str,
                          test_mode: bool) -> Optional[Dict[int, int]]:
    """Map raw label -> training/evaluation label for one split.

    Only entries that change a value are listed (``LoadAnnotations`` then
    touches fewer pixels); 255 is never listed and stays 255. ``None`` when
    nothing changes.
    """
    out = task.output_index(step)
    old = set(task.old_classes(step)) - {0}
    unseen_to = 0 if (eval_protocol == 'unseen_as_background'
                      if test_mode else setting == 'overlapped') else IGNORE
    label_map = {}
    for c in range(NUM_CLASSES[task.dataset]):
        if c not in out:
            # Future classes. Training: in sequential/disjoint no kept image
            # holds one (fg ⊆ S_k), overlapped -> 0. Evaluation: by protocol.
            label_map[c] = unseen_to
        elif c in old and not test_mode and setting != 'sequential':
            label_map[c] = 0  # disjoint / overlapped: old -> background
        else:
            label_map[c] = out[c]
    return {k: v for k, v in label_map.items() if k != v} or None


def keep_mask(presence: np.ndarray, task: IncrementalTask, step: int,
              setting: str, eval_protocol: str, test_mode: bool) -> np.ndarray:
    """Which images the split keeps, from per-image label presence.

    Args:
        presence (np.ndarray): ``(N, 256)`` bool, raw labels per image.

    Returns:
        np.ndarray: ``(N,)`` bool.
    """
    n = presence.shape[1]
    fg = presence.copy()
    fg[:, [0, IGNORE]] = False

    def members(classes) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[list(classes)] = True
        return m

    seen = members(task.seen_classes(step))
    inside_seen = ~(fg & ~seen).any(axis=1)
    if test_mode:
        if eval_protocol == 'seen_only':
            return inside_seen
        return (fg & seen).any(axis=1)
    has_new = (fg & members(task.new_classes(step))).any(axis=1)
    if setting == 'overlapped':
        return has_new
    return has_new & inside_seen


def _check_paths(kwargs: dict) -> None:
    """One clear error for a missing data root, image folder or split list
    (mmseg's own check is a bare assert)."""
    root = kwargs.get('data_root') or ''
    if root and not osp.isdir(root):
        raise FileNotFoundError(
            f'data_root {root!r} does not exist; put the dataset there (see '
            'docs/gpu.md, "Real Pascal VOC and weights") or pass data_root.')

    def join(path: str) -> str:
        return path if not path or osp.isabs(path) else osp.join(root, path)

    ann_file = join(kwargs.get('ann_file') or '')
    if ann_file and not osp.exists(ann_file):
        raise FileNotFoundError(
            f'Split list {ann_file!r} does not exist; check ann_file (e.g. '
            'ImageSets/Segmentation/train_aug.txt for SBD-augmented VOC).')
    for key in ('img_path', 'seg_map_path'):
        folder = join((kwargs.get('data_prefix') or {}).get(key) or '')
        if folder and not osp.isdir(folder):
            raise FileNotFoundError(
                f'data_prefix.{key} {folder!r} does not exist; check '
                'data_root and data_prefix.')


@contextmanager
def _seeded_randomness(seed: int, key: str) -> Iterator[None]:
    """Seed numpy's, Python's and torch's (CPU) global generators from
    ``(seed, key)`` inside the block and restore their states after it, so
    that the rest of the process (the sampler, other images) is
    undisturbed."""
    crc = zlib.crc32(key.encode())
    with preserved_rng():
        np.random.seed([seed % 2**32, crc])
        random.seed(f'{seed}:{key}')
        # The CPU generator only (torch.manual_seed would reseed CUDA's).
        torch.default_generator.manual_seed((seed % 2**31) * 2**32 + crc)
        yield


class IncrementalDatasetMixin:
    """Turns an mmseg dataset into the split of one step of a task.

    Mixed in front of an mmseg dataset class that defines ``METAINFO`` with
    all classes of the dataset (class id = index). Subclasses set
    ``DATASET_NAME`` (the key of :func:`mmseg_incremental.get_task`).

    Args:
        task (str | dict): Task name (``'15-1'``) or a custom
            ``dict(steps=[[0, ...], ...])``.
        step (int): The step k whose split this is. Defaults to 0.
        setting (str): Training split rule: ``'sequential'`` (the paper's),
            ``'disjoint'`` or ``'overlapped'``. Defaults to ``'sequential'``.
        eval_protocol (str): Evaluation split rule when ``test_mode=True``:
            ``'seen_only'``, ``'mask_unseen'`` or ``'unseen_as_background'``.
            Defaults to ``'seen_only'``.
        presence_cache_dir (str, optional): Folder of the class-presence
            cache. Defaults to ``$MMSEG_INCREMENTAL_CACHE`` or
            ``~/.cache/mmseg_incremental``.
        augment_seed (int, optional): When set, every image gets one fixed
            augmentation: its pipeline runs with the random generators
            (numpy, Python, torch) seeded from ``augment_seed`` and the
            image's file name, so the same crop, flip and scale come back every
            epoch, in every worker and after a resume (the authors' teacher
            cache, ``run_generate_old_maps.py``, relies on this; the
            experiment sets it with ``DistillEncoderDecoder(teacher_cache=
            ...)``). None: a new random augmentation at every visit.
            Defaults to None.
        memory_file (str, optional): An exemplar memory
            (:mod:`.exemplar_memory`, ``memory.json``): its images, ids of
            the same split list, are added to the step's, with the step's
            label map. Defaults to None.
        **kwargs: The mmseg dataset's own arguments.
    """

    DATASET_NAME: str = ''

    def __init__(self,
                 *args,
                 task: TaskSpec,
                 step: int = 0,
                 setting: str = 'sequential',
                 eval_protocol: str = 'seen_only',
                 presence_cache_dir: Optional[str] = None,
                 augment_seed: Optional[int] = None,
                 memory_file: Optional[str] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        self.task = get_task(self.DATASET_NAME, task)
        self.task.new_classes(step)  # validates the step
        _check_choice('setting', setting, SETTINGS)
        _check_choice('eval_protocol', eval_protocol, EVAL_PROTOCOLS)
        self.step = step
        self.setting = setting
        self.eval_protocol = eval_protocol
        self.presence_cache_dir = presence_cache_dir
        self.augment_seed = None if augment_seed is None else int(augment_seed)
        self.memory_file = memory_file
        #: Images added from the exemplar memory (after the split's own).
        self.num_memory = 0
        all_names = self.METAINFO['classes']
        names = tuple(all_names[c] for c in self.task.seen_classes(step))
        if metainfo and 'classes' in metainfo and \
                tuple(metainfo['classes']) != names:
            raise ValueError(
                f'metainfo classes {tuple(metainfo["classes"])} contradict '
                f'step {step} of task {self.task.name!r} ({names}); leave '
                '`metainfo.classes` out: the task decides the classes.')
        _check_paths(kwargs)
        metainfo = dict(metainfo or {})
        metainfo.update(
            classes=names,
            class_steps=self.task.step_output_indices(step),
            incremental=dict(
                task=self.task.to_dict(),
                step=step,
                setting=setting,
                eval_protocol=eval_protocol))
        super().__init__(*args, metainfo=metainfo, **kwargs)

    # Hooks of mmseg's BaseSegDataset -------------------------------------
    def prepare_data(self, idx: int) -> Any:
        """The pipeline's output for image ``idx``; with ``augment_seed``,
        the same augmentation at every call (see the class docstring)."""
        if self.augment_seed is None:
            return super().prepare_data(idx)
        path = self.get_data_info(idx).get('img_path')
        key = osp.basename(path) if path else str(idx)
        with _seeded_randomness(self.augment_seed, key):
            return super().prepare_data(idx)

    def get_label_map(
        self,
        new_classes: Optional[Sequence[str]] = None
    ) -> Optional[Dict[int, int]]:
        """The step's label map (see module docstring); ignores
        ``new_classes``, which the task already fixed."""
        return incremental_label_map(self.task, self.step, self.setting,
                                     self.eval_protocol, self.test_mode)

    def _update_palette(self) -> list:
        palette = self.METAINFO['palette']
        return [palette[c] for c in self.task.seen_classes(self.step)]

    def _relative(self, path: str) -> str:
        root = getattr(self, 'data_root', None) or ''
        if root and osp.abspath(path).startswith(osp.abspath(root) + os.sep):
            return osp.relpath(osp.abspath(path), osp.abspath(root))
        return osp.basename(path)

    def _check_scan(self, data_list: List[dict], scan: MaskScan) -> None:
        """Name the masks with label values that are neither a class of
        the dataset nor the ignore index, and the images whose mask has
        another size -- all of them (up to a few), before anything
        trains."""
        num_classes = len(self.METAINFO['classes'])
        ignore = int(getattr(self, 'ignore_index', 255))
        allowed = np.zeros(256, dtype=bool)
        allowed[:num_classes] = True
        if 0 <= ignore < 256:
            allowed[ignore] = True
        problems = []
        for i in np.flatnonzero((scan.presence & ~allowed).any(1)):
            values = np.flatnonzero(scan.presence[i] & ~allowed).tolist()
            problems.append(f"{data_list[i]['seg_map_path']} (values "
                            f'{", ".join(map(str, values[:5]))})')
        if problems:
            raise ValueError(
                f'{len(problems)} mask(s) of {self.ann_file or "the split"} '
                'hold label values that are neither a class (0..'
                f'{num_classes - 1}) nor the ignore index {ignore}: '
                f'{"; ".join(problems[:MAX_NAMED])}'
                f'{" ..." if len(problems) > MAX_NAMED else ""}. Fix or '
                'remove these files (and their lines in the split list).')
        if scan.image_shapes is None:
            return
        bad = np.flatnonzero(
            (scan.image_shapes != scan.mask_shapes).any(1)).tolist()
        if bad:
            named = [
                f"{data_list[i]['img_path']} {scan.image_shapes[i][1]}x"
                f"{scan.image_shapes[i][0]} vs mask "
                f"{scan.mask_shapes[i][1]}x{scan.mask_shapes[i][0]}"
                for i in bad[:MAX_NAMED]
            ]
            raise ValueError(
                f'{len(bad)} image(s) of {self.ann_file or "the split"} '
                f'differ in size from their mask: {"; ".join(named)}'
                f'{" ..." if len(bad) > MAX_NAMED else ""}. Fix or remove '
                'these files (and their lines in the split list).')

    def _labelled_classes(self, presence: np.ndarray) -> List[int]:
        """The classes (raw ids) an image's label shows at this step: in
        its mask and neither background nor ignored by the label map."""
        label_map = self.get_label_map() or {}
        return [
            int(c) for c in np.flatnonzero(presence)
            if c not in (0, IGNORE) and label_map.get(int(c), int(c)) not in
            (0, IGNORE)
        ]

    def candidate_labels(self) -> List[Tuple[str, List[int]]]:
        """``(image id, classes its label shows at this step)`` of every
        image of the split (the exemplar memory's candidates,
        :mod:`.exemplar_memory`)."""
        return list(self._labelled)

    def _memory_entries(self, data_list: List[dict],
                        keep: np.ndarray) -> List[dict]:
        """The split list's entries of the memory's image ids that the
        step's split does not hold already."""
        from .exemplar_memory import read_memory
        ids = set(read_memory(self.memory_file)['memory'])
        found = {image_id(d['img_path']): (d, k)
                 for d, k in zip(data_list, keep)}
        missing = sorted(ids - set(found))
        if missing:
            raise ValueError(
                f'{len(missing)} image(s) of the exemplar memory '
                f'{self.memory_file} are not in {self.ann_file}: '
                f'{", ".join(missing[:MAX_NAMED])}; the memory was chosen '
                'from other data. Remove the file to choose it again.')
        return [found[i][0] for i in sorted(ids) if not found[i][1]]

    def data_fingerprint(self) -> str:
        """SHA-256 of this split's content: each kept image's path (relative
        to ``data_root``) and size in bytes, and its mask's path and CRC-32.
        A regenerated or edited dataset at the same path gets another one;
        a copy elsewhere (any mtimes) keeps it."""
        digest = hashlib.sha256()
        for key in self._content_keys:
            digest.update(repr(key).encode())
        return digest.hexdigest()

    def filter_data(self) -> List[dict]:
        """Keep the images of this step's split (module docstring)."""
        data_list = super().filter_data()
        if getattr(self, 'reduce_zero_label', False):
            raise ValueError('Incremental datasets treat label 0 as the '
                             'background class; set reduce_zero_label=False.')
        missing = [d['img_path'] for d in data_list if 'seg_map_path' not in d]
        if missing:
            raise ValueError(
                'Incremental splits are decided by the labels of each image, '
                f'but {missing[0]!r} has no mask; set data_prefix.'
                'seg_map_path.')
        scan = scan_masks([d['seg_map_path'] for d in data_list],
                          [d['img_path'] for d in data_list],
                          cache_dir=self.presence_cache_dir)
        self._check_scan(data_list, scan)
        keep = keep_mask(scan.presence, self.task, self.step, self.setting,
                         self.eval_protocol, self.test_mode)
        kept = [d for d, k in zip(data_list, keep) if k]
        self._content_keys = [(self._relative(d['img_path']), int(size),
                               self._relative(d['seg_map_path']), int(crc))
                              for d, size, crc, k in zip(
                                  data_list, scan.image_sizes, scan.digests,
                                  keep) if k]
        self._labelled = [
            (image_id(d['img_path']), self._labelled_classes(row))
            for d, row, k in zip(data_list, scan.presence, keep) if k
        ]
        if self.memory_file is not None:
            memory = self._memory_entries(data_list, keep)
            self.num_memory = len(memory)
            kept = kept + memory
        if not kept:
            rule = (f'eval_protocol={self.eval_protocol!r}'
                    if self.test_mode else f'setting={self.setting!r}')
            raise ValueError(
                f'Step {self.step} of task {self.task.name!r} ({rule}) keeps '
                f'no image out of {len(data_list)} in {self.ann_file!r}: no '
                'image contains the classes '
                f'{self.task.new_classes(self.step)} under this rule. Check '
                'the split list and masks, or choose another task/setting.')
        return kept
