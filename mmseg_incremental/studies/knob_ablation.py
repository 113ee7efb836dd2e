"""The authors'-code knobs one at a time (docs/methods.md, "The authors'
code ...").

Each knob is the ``--cfg-options`` that switches one difference between our
defaults and the authors' TensorFlow code (LTTM/IL-SemSegm) on; the
ablation runs a method once with our defaults and once per knob, all on one
data root and one step-0 store (knobs that change step 0 train their own
M_0); :func:`mmseg_incremental.reporting.ablation_table` tabulates them.
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .run_methods import run_methods

#: label -> cfg options (a, b, c, d, e of the docs/methods.md table).
KNOBS: Dict[str, Dict] = {
    'ours (defaults)': {},
    "(a) L'_D on upsampled logits": {
        'incremental.distill_terms.output.resolution': 'labels'
    },
    '(b) BN statistics frozen, gamma/beta trained': {
        'model.backbone.norm_eval': True,
        'model.backbone.norm_cfg.requires_grad': True,
    },
    '(c) fixed 21-output classifier': {
        'classifier': 'fixed'
    },
    '(d) lr decays over 20x the step': {
        'lr_decay_horizon': 20
    },
    '(e) Caffe BGR mean, no std': {
        'model.data_preprocessor.mean': [104.008, 116.669, 122.675],
        'model.data_preprocessor.std': [1.0, 1.0, 1.0],
        'model.data_preprocessor.bgr_to_rgb': False,
    },
}


def _slug(label: str) -> str:
    return ''.join(c if c.isalnum() else '_' for c in label).strip('_')


def run_knob_ablation(
    configs: Sequence[str],
    work_dir: str,
    data_root: str,
    cfg_options: Optional[Dict] = None,
    knobs: Optional[Dict[str, Dict]] = None,
    on_summary: Optional[Callable[[str, dict], None]] = None
) -> List[Tuple[str, str, str]]:
    """Run every config with our defaults and with each knob alone.

    Returns:
        list[tuple[str, str, str]]: ``(knob label, config, run dir)``.
    """
    knobs = KNOBS if knobs is None else knobs
    store = osp.join(work_dir, 'step0_store')
    runs = []
    for label, options in knobs.items():
        merged = dict(cfg_options or {}, **options)
        dirs = run_methods(
            configs,
            osp.join(work_dir, _slug(label)),
            data_root,
            step0_store=store,
            cfg_options=merged,
            on_summary=on_summary)
        runs += [(label, c, d) for c, d in zip(configs, dirs)]
    return runs
