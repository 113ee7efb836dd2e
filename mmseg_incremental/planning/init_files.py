"""Where M_0's weights start: ``load_from`` and ``pretrained`` files.

Step 0 is the only step that reads an initialisation file (every later
step starts from M_{k-1}). What decides M_0 is the *content* of that file,
not its path, so the step-0 and experiment fingerprints carry the files'
SHA-256 (:func:`init_sources`), and step 0 logs which init it used
(:func:`init_message`): the file and its hash, or a warning when a deep
backbone (ResNet-50/101, the paper's) would train from random weights.
"""
import hashlib
import logging
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config

_URI = re.compile(r'^[a-zA-Z][\w+.-]*://')
_HASHES: Dict[Tuple[str, int, int], str] = {}


def file_sha256(path: str) -> str:
    """SHA-256 of a local file (memoised by path, size and mtime)."""
    path = osp.abspath(osp.expanduser(path))
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 22), b''):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _pretrained_paths(model: dict) -> List[Tuple[str, str]]:
    """(where, checkpoint) of every pretrained reference in a model cfg."""
    found = []
    if model.get('pretrained'):
        found.append(('model.pretrained', model['pretrained']))
    for name in ('backbone', 'neck', 'decode_head', 'auxiliary_head'):
        part = model.get(name)
        if not isinstance(part, dict):
            continue
        if part.get('pretrained'):
            found.append((f'model.{name}.pretrained', part['pretrained']))
        init_cfg = part.get('init_cfg')
        for init in init_cfg if isinstance(init_cfg, list) else [init_cfg]:
            if isinstance(init, dict) and init.get('type') == 'Pretrained':
                found.append((f'model.{name}.init_cfg', init['checkpoint']))
    return found


def _init_refs(step_cfg: Config) -> List[Tuple[str, str]]:
    """(where, file) of every pretrained checkpoint and of ``load_from``."""
    refs = _pretrained_paths(step_cfg.get('model', {}))
    if step_cfg.get('load_from'):
        refs.append(('load_from', step_cfg['load_from']))
    return refs


def init_sources(step_cfg: Config) -> Dict[str, Optional[str]]:
    """Every initialisation file of a step config with its content hash.

    Returns:
        dict: ``{where: 'sha256:<hex>' | 'uri:<address>'}`` for
        ``load_from`` and each pretrained checkpoint of the model; empty
        when the model starts from random weights.

    Raises:
        FileNotFoundError: A local file that does not exist (nothing would
            be loaded and M_0 would silently start from random weights).
    """
    out = {}
    for where, path in _init_refs(step_cfg):
        path = str(path)
        if _URI.match(path):
            out[where] = f'uri:{path}'
            continue
        if not osp.isfile(osp.expanduser(path)):
            raise FileNotFoundError(
                f'{where}={path!r} does not exist; point it at a local '
                'checkpoint (nothing is downloaded here; see docs/gpu.md, '
                '"Real Pascal VOC and weights") or set it to None to train '
                'from random weights.')
        out[where] = f'sha256:{file_sha256(path)}'
        if where != 'load_from':
            check_input_matches_weights(step_cfg, where, path)
    return out


def _is_torchvision_imagenet(path: str) -> bool:
    """Whether a weight file is a torchvision ImageNet classifier's (a
    plain state dict with its 1000-way ``fc``), memoised like the hash."""
    path = osp.abspath(osp.expanduser(path))
    stat = os.stat(path)
    key = ('torchvision', path, stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        try:
            state = torch.load(
                path, map_location='cpu', weights_only=True, mmap=True)
        except Exception:  # not ours to judge: the init will report it
            state = {}
        if isinstance(state, dict) and isinstance(
                state.get('state_dict'), dict):
            state = state['state_dict']
        fc = state.get('fc.weight') if isinstance(state, dict) else None
        _HASHES[key] = str(
            isinstance(fc, torch.Tensor) and fc.dim() == 2
            and fc.shape[0] == 1000)
    return _HASHES[key] == 'True'


def check_input_matches_weights(step_cfg: Config, where: str,
                                path: str) -> None:
    """Refuse torchvision's ImageNet weights under the Caffe input.

    The paper-row configs take the authors' input (BGR minus the Caffe
    mean, no std, ``style='caffe'``) for their MSCOCO DeepLab-v2 weights;
    torchvision's ResNet expects RGB with ImageNet mean/std. The mismatch
    trains without an error and silently costs accuracy, so it is refused.

    Raises:
        ValueError: When ``path`` holds a torchvision ImageNet classifier
            and the model's preprocessor does not divide by a std or keeps
            BGR.
    """
    pre = step_cfg.get('model', {}).get('data_preprocessor') or \
        step_cfg.get('data_preprocessor') or {}
    caffe_input = list(pre.get('std', [])) == [1.0, 1.0, 1.0] or \
        pre.get('bgr_to_rgb') is False
    if not caffe_input or not _is_torchvision_imagenet(path):
        return
    name = osp.basename(str(getattr(step_cfg, 'filename', None) or 'X.py'))
    raise ValueError(
        f'{where}={path!r} is torchvision\'s ImageNet ResNet (1000-way '
        'fc): it expects RGB input normalised by the ImageNet mean/std '
        'and style=\'pytorch\', but this config feeds the Caffe input of '
        'the authors\' MSCOCO DeepLab-v2 weights (BGR minus '
        f'{list(pre.get("mean", []))}, std {list(pre.get("std", []))}). '
        f'Use configs/il/ours/{name} (the paper\'s rows in this plugin\'s '
        'flavour, ImageNet input), or '
        'start from the Caffe weights (docs/gpu.md, "Weights in other '
        'formats").')


def init_message(step_cfg: Config) -> Tuple[str, int]:
    """The line step 0 logs about its initialisation, and its level."""
    sources = init_sources(step_cfg)
    refs = dict(_init_refs(step_cfg))
    if sources:
        text = '; '.join(f'{where}={refs[where]} ({sources[where]})'
                         for where in sources)
        return f'M_0 init: {text}', logging.INFO
    backbone = step_cfg.get('model', {}).get('backbone', {}) or {}
    deep = 'ResNet' in str(backbone.get('type', '')) and \
        int(backbone.get('depth', 0)) >= 50
    text = ('M_0 init: random init (no load_from, no pretrained weights).')
    if deep:
        return (text + f' A {backbone["type"]}-{backbone["depth"]} trained '
                'from scratch will not reach the paper\'s numbers: set '
                'pretrained=/path/to/resnet.pth (see docs/gpu.md).'), \
            logging.WARNING
    return text, logging.INFO
