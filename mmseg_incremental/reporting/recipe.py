"""The training recipe behind a run's numbers, for like-for-like tables.

A published row is shown beside a run only when it was measured the same
way: same setting, protocol and method config (``references``), and the
same **recipe** -- network family and depth, output stride, training crop,
total batch, schedule family and evaluation view. :func:`run_recipe`
reads it off an experiment config (``summary.json`` records it under
``recipe``); :data:`ILT_RECIPE` and :data:`MIB_RECIPE` are the papers'.
"""
from typing import Any, Dict, List, Mapping, Optional

#: Decode heads -> the network family the papers name.
HEAD_FAMILIES = {
    'DeepLabV2Head': 'DeepLab-v2',
    'ASPPHead': 'DeepLab-v3',
    'DepthwiseSeparableASPPHead': 'DeepLab-v3+',
}
#: The fields compared, in the order a mismatch line names them.
FIELDS = ('network', 'output_stride', 'crop', 'total_batch', 'schedule',
          'evaluation')

#: The ILT paper's recipe (Michieli & Zanuttigh 2019, Sec. 5): DeepLab-v2
#: ResNet-101 at output stride 8, crop 321, batch 4, 1,000 iterations a
#: class, whole-image evaluation.
ILT_RECIPE = dict(
    network='DeepLab-v2 R101',
    output_stride=8,
    crop='321x321',
    total_batch=4,
    schedule='iterations per class',
    evaluation='whole images')
#: MiB's (and PLOP's) recipe: DeepLab-v3 ResNet-101 at output stride 16,
#: crop 512, 24 images a batch, 30 epochs a step, the 512 centre crop
#: evaluated (fcdl94/MiB README.md, argparser.py, run.py).
MIB_RECIPE = dict(
    network='DeepLab-v3 R101',
    output_stride=16,
    crop='512x512',
    total_batch=24,
    schedule='epochs of the image lists',
    evaluation='512x512 centre crop')


def _get(cfg: Mapping, key: str, default=None):
    return cfg[key] if key in cfg and cfg[key] is not None else default


def _network(model: Mapping) -> str:
    head = dict(model.get('decode_head') or {})
    kind = head.get('head_type') or head.get('type', '?')
    backbone = dict(model.get('backbone') or {})
    depth = backbone.get('depth')
    family = HEAD_FAMILIES.get(kind, kind)
    if depth:
        return f'{family} R{depth}'
    return f'{family} {backbone.get("type")}'


def _output_stride(backbone: Mapping) -> Optional[int]:
    strides = backbone.get('strides')
    if strides is None:
        return None
    stride = 4  # the ResNet stem
    for s in strides:
        stride *= int(s)
    return stride


def _crop(cfg: Mapping) -> Optional[str]:
    crop = _get(cfg, 'crop_size')
    if crop is None:
        crop = ((cfg.get('model') or {}).get('data_preprocessor')
                or {}).get('size')
    if crop is None:
        return None
    h, w = (crop, crop) if isinstance(crop, int) else tuple(crop)
    return f'{h}x{w}'


def run_recipe(cfg: Mapping) -> Dict[str, Any]:
    """The recipe of an experiment config (see module docstring)."""
    model = dict(cfg.get('model') or {})
    batch = _get(cfg, 'total_batch_size')
    if batch is None:
        batch = (cfg.get('train_dataloader') or {}).get('batch_size')
    eval_crop = _get(cfg, 'eval_crop')
    return dict(
        network=_network(model),
        output_stride=_output_stride(dict(model.get('backbone') or {})),
        crop=_crop(cfg),
        total_batch=batch,
        schedule=('epochs of the image lists'
                  if _get(cfg, 'iters_per_step') is not None else
                  'iterations per class'),
        evaluation=('whole images' if eval_crop is None else
                    f'{eval_crop}x{eval_crop} centre crop'))


def recipe_differences(want: Mapping[str, Any],
                       got: Optional[Mapping[str, Any]]) -> List[str]:
    """``'<field> <want> (here <got>)'`` for each field that differs; none
    for a run whose summary predates the recipe (it is not compared)."""
    if got is None:
        return []
    return [
        f'{field.replace("_", " ")} {want[field]} (here {got.get(field)})'
        for field in FIELDS if want.get(field) != got.get(field)
    ]
