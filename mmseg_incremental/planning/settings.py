"""The settings of an experiment config, declared once.

An experiment config is an mmseg config plus top-level settings (``task``,
``iters_per_class``, ``amp``, ...). :data:`SETTINGS` declares each one:
its name, type, default, allowed values and what it decides. Nothing else
keeps a default: the planner reads them through :func:`setting_value` /
:func:`check_settings`, ``docs/settings.md`` is generated from them
(:func:`settings_markdown`, ``tools/settings_table.py``) and
``--dry-run`` lists every value with its source (:func:`setting_sources`).

:func:`check_settings` runs before an experiment writes anything. It
refuses, in one ``ValueError``:

- a value a setting does not allow (``iters_per_class=0``,
  ``amp='bf17'``), naming the key, the value and what is allowed;
- a top-level key that is not known but close to a setting's name
  (``iters_per_clas``: "did you mean iters_per_class?"), which mmengine
  would otherwise keep and the experiment ignore. Keys that mmengine,
  mmseg or their configs use (:data:`MMSEG_TOP_LEVEL_KEYS`) and a
  config's own helper variables far from every setting's name
  (``norm_cfg``, ``my_schedule``) are never refused;
- a ``--cfg-options`` key close to (or equal to) an argument of the
  incremental segmentor (``teacher_cahce``): it belongs inside
  ``incremental`` (``incremental.teacher_cache``).

The defaults are what applies when neither the config nor its bases set a
key. The shipped bases set several explicitly (the ILT schedule's
``iters_per_class = 1000`` and lrs, equal to the defaults; the MiB/PLOP
setups their own), as the paper's values.
"""
import copy
import difflib
import functools
import inspect
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional

from mmengine.config import Config, ConfigDict

from ..datasets.incremental_mixin import EVAL_PROTOCOLS
from ..datasets.incremental_mixin import SETTINGS as SPLIT_SETTINGS
from .scalars import AMP_MODES
from .step_model import CLASSIFIERS

#: Resolutions of L'_D that ``distill_resolution`` may force.
DISTILL_RESOLUTIONS = ('logits', 'labels')
#: How close (difflib ratio) an unknown key must be to a setting's name to
#: be refused as its misspelling.
CLOSE_MATCH_CUTOFF = 0.8
#: Top-level keys of mmengine/mmseg configs (the Runner's arguments, mmseg's
#: ``_base_`` variables and the usual helper variables of mmseg configs):
#: never taken for a misspelt setting.
MMSEG_TOP_LEVEL_KEYS = frozenset("""
    model model_wrapper_cfg work_dir experiment_name train_dataloader
    val_dataloader test_dataloader train_cfg val_cfg test_cfg auto_scale_lr
    optim_wrapper param_scheduler val_evaluator test_evaluator default_hooks
    custom_hooks data_preprocessor load_from resume launcher env_cfg
    log_processor log_level visualizer vis_backends default_scope randomness
    custom_imports compile strategy cfg find_unused_parameters
    dataset_type img_scale img_ratios norm_cfg backbone_norm_cfg
    img_norm_cfg train_pipeline test_pipeline val_pipeline tta_model
    tta_pipeline backend_args optimizer optimizer_config checkpoint_file
    checkpoint num_classes classes palette batch_size num_workers max_iters
    max_epochs val_interval interval seed lr embed_multi custom_keys
    ham_norm_cfg img_size image_size dist_params cudnn_benchmark
    mp_start_method opencv_num_threads data workflow log_config
    checkpoint_config evaluation runner lr_config gpu_ids
""".split())


@dataclass(frozen=True)
class Setting:
    """One top-level setting of an experiment config.

    Args:
        name (str): The top-level key.
        kind (type | tuple): The types a value may have (a ``bool`` is
            never taken for an int or a float; an int is a float).
        default: The value when neither the config nor its bases set it.
        doc (str): What it decides, one line (``docs/settings.md``).
        choices (tuple, optional): The values allowed (None included when
            ``optional``). Defaults to None: any value of ``kind``.
        minimum (float, optional): The smallest number allowed. Defaults
            to None (no bound).
        optional (bool): None is allowed. Defaults to False.
        required (bool): The config must set it (no default). Defaults to
            False.
        mmseg_scalar (bool): An mmseg-style variable that the step configs
            keep (the others are removed from them: ``EXPERIMENT_KEYS``).
            Defaults to False.
        check (callable, optional): ``check(value) -> bool`` for shapes
            the fields above cannot say (``crop_size``'s pair).
        allowed_text (str, optional): Says what ``check`` allows.
    """

    name: str
    kind: Any
    default: Any
    doc: str
    choices: Optional[tuple] = None
    minimum: Optional[float] = None
    optional: bool = False
    required: bool = False
    mmseg_scalar: bool = False
    check: Optional[Callable[[Any], bool]] = None
    allowed_text: Optional[str] = None

    @property
    def type_name(self) -> str:
        """``int``, ``float`` (an int is one), ``str or dict``..."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind, )
        names = []
        for k in kinds:
            name = 'tuple' if k is list else k.__name__
            if name == 'int' and float in kinds:
                continue
            if name not in names:
                names.append(name)
        return ' or '.join(names)

    @property
    def allowed(self) -> str:
        """The values allowed, as the error messages and the docs say."""
        if self.allowed_text:
            text = self.allowed_text
        elif self.choices is not None:
            text = _one_of([repr(c) for c in self.choices])
        elif self.minimum is not None:
            noun = 'an int' if self.type_name == 'int' else 'a number'
            text = f'{noun} >= {self.minimum:g}'
        elif self.kind is bool:
            text = 'True or False'
        else:
            text = f'a {self.type_name}'
        if not self.optional:
            return text
        return f'None, {text}' if ' or ' in text else f'None or {text}'

    def validate(self, value: Any) -> None:
        """Raise ValueError unless ``value`` is allowed."""
        if value is None and self.optional:
            return
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f'{self.name}={value!r} is unknown; use '
                                 f'{self.allowed} (docs/settings.md).')
            return
        ok = _is_kind(value, self.kind)
        if ok and self.minimum is not None:
            ok = value >= self.minimum
        if ok and self.check is not None:
            ok = self.check(value)
        if not ok:
            raise ValueError(f'{self.name}={value!r} is invalid; use '
                             f'{self.allowed} (docs/settings.md).')


def _one_of(items: List[str]) -> str:
    return items[0] if len(items) == 1 else \
        f'{", ".join(items[:-1])} or {items[-1]}'


def _is_kind(value: Any, kind: Any) -> bool:
    """isinstance, with numbers by value type (no bools) and dicts."""
    for k in kind if isinstance(kind, tuple) else (kind, ):
        if k is bool and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if k is int and isinstance(value, numbers.Integral):
            return True
        if k is float and isinstance(value, numbers.Real):
            return True
        if k not in (int, float, bool) and isinstance(value, k):
            return True
    return False


def _is_task(value: Any) -> bool:
    """A task's name, or ``dict(steps=[[...], ...])`` (``get_task`` checks
    the classes)."""
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, dict) and \
        isinstance(value.get('steps'), (list, tuple))


def _is_crop(value: Any) -> bool:
    """An int side or an (h, w) pair of ints, all >= 1."""
    sides = value if isinstance(value, (list, tuple)) else [value]
    return len(sides) in (1, 2) and all(
        _is_kind(s, int) and s >= 1 for s in sides)


#: Every setting of an experiment config, in the order the docs list them.
SETTINGS = (
    # What is learnt, from which data.
    Setting(
        name='task',
        kind=(str, dict),
        default=None,
        doc='the incremental task: the classes of each step, by name (see '
        'mmseg_incremental/tasks.py) or listed',
        required=True,
        check=_is_task,
        allowed_text="a task name such as '15-1', or "
        'dict(steps=[[0, 1, ...], [16], ...]) with an optional name'),
    Setting(
        name='setting',
        kind=str,
        default='sequential',
        doc="training split rule of every step (MiB's disjoint/overlapped)",
        choices=SPLIT_SETTINGS),
    Setting(
        name='eval_protocol',
        kind=str,
        default='seen_only',
        doc='validation split rule: which images count, and the pixels of '
        'unseen classes',
        choices=EVAL_PROTOCOLS),
    Setting(
        name='eval_crop',
        kind=int,
        default=None,
        doc='evaluate the centre crop of this side after resizing the short '
        "side to it, as MiB and PLOP (None: whole images, as ILT)",
        minimum=1,
        optional=True),
    Setting(
        name='memory_size',
        kind=int,
        default=0,
        doc='exemplar memory: steps k >= 1 also train on this many images of '
        "the previous steps, class-balanced (DKD-M's 100; 0: none)",
        minimum=0),
    Setting(
        name='max_step',
        kind=int,
        default=None,
        doc='run steps 0..max_step only (None: every step of the task)',
        minimum=0,
        optional=True),
    Setting(
        name='data_root',
        kind=str,
        default=None,
        doc="every incremental dataset's data_root (None: each dataset's "
        'own; see "data_root" below)',
        optional=True,
        mmseg_scalar=True),
    Setting(
        name='crop_size',
        kind=(int, tuple, list),
        default=None,
        doc="the training pipeline's crop_size and the preprocessor's size "
        "(None: the pipeline's own)",
        optional=True,
        mmseg_scalar=True,
        check=_is_crop,
        allowed_text='an int >= 1 or an (h, w) pair of ints >= 1'),
    Setting(
        name='pretrained',
        kind=str,
        default=None,
        doc="step 0's model.pretrained (later steps start from M_{k-1})",
        optional=True,
        mmseg_scalar=True),
    # The schedule.
    Setting(
        name='iters_per_class',
        kind=int,
        default=1000,
        doc='iterations per class: step 0 trains |S_0| x it, step k '
        '|U_k| x it',
        minimum=1),
    Setting(
        name='iters_per_class_incremental',
        kind=int,
        default=None,
        doc='iterations per new class at steps k >= 1 (None: '
        'iters_per_class)',
        minimum=1,
        optional=True),
    Setting(
        name='iters_per_step',
        kind=(list, tuple),
        default=None,
        doc="each step's iterations, one per step of the task (the authors' "
        'epochs x iterations per epoch of their image lists; None: '
        'iters_per_class x the classes of the step)',
        optional=True,
        check=lambda v: bool(v) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1
            for n in v),
        allowed_text='a list of ints >= 1, one per step'),
    Setting(
        name='lr_step0',
        kind=(int, float),
        default=1e-4,
        doc="step 0's base lr (the optimizer's lr is replaced; 0 trains "
        'nothing)',
        minimum=0),
    Setting(
        name='lr_incremental',
        kind=(int, float),
        default=5e-5,
        doc='the base lr of steps k >= 1',
        minimum=0),
    Setting(
        name='lr_min',
        kind=(int, float),
        default=1e-6,
        doc='the eta_min of the schedulers that run to the end of a step',
        minimum=0),
    Setting(
        name='lr_decay_horizon',
        kind=(int, float),
        default=1.0,
        doc='steps k >= 1: the poly decay spans this x the step (the '
        'authors: 20)',
        minimum=1),
    Setting(
        name='total_batch_size',
        kind=int,
        default=None,
        doc='the batch summed over all processes, split evenly among them '
        "(None: train_dataloader.batch_size per process, mmseg's rule)",
        minimum=1,
        optional=True,
        mmseg_scalar=True),
    # The method.
    Setting(
        name='method',
        kind=str,
        default=None,
        doc='the name reports print (None: the config file name)',
        optional=True),
    Setting(
        name='incremental',
        kind=dict,
        default=dict(),
        doc="the incremental segmentor's arguments at steps k >= 1 (the "
        'segmentor checks them)'),
    Setting(
        name='classifier',
        kind=str,
        default='grow',
        doc="'grow': |S_k| outputs at step k; 'fixed': every class's from "
        "step 0 (the authors' code)",
        choices=CLASSIFIERS),
    Setting(
        name='distill_resolution',
        kind=str,
        default=None,
        doc="L'_D on logits or on labels' resolution for every term that "
        "has one (None: the terms' own)",
        choices=(None, ) + DISTILL_RESOLUTIONS),
    Setting(
        name='void_as_background',
        kind=bool,
        default=False,
        doc='train void pixels (255) as background at every step: '
        "VoidAsBackground after LoadAnnotations in the training pipeline "
        "(MiB's dataset/voc.py; evaluation keeps 255 ignored)"),
    # How the steps run.
    Setting(
        name='amp',
        kind=str,
        default=None,
        doc='mixed precision of every step (auto: bf16 where supported, '
        'else fp16; None: fp32)',
        choices=AMP_MODES),
    Setting(
        name='nan_policy',
        kind=str,
        default='stop',
        doc="a non-finite loss: 'stop' the step with one line; 'skip' (fp16 "
        'AMP only) its iteration, whose step the loss scaler skipped, up to '
        '10 in a row',
        choices=('stop', 'skip')),
    Setting(
        name='channels_last',
        kind=bool,
        default=False,
        doc='NHWC memory layout of the model and batches '
        '(ChannelsLastHook)'),
    Setting(
        name='cuda_graph',
        kind=bool,
        default=False,
        doc='replay the encoders from CUDA graphs (CudaGraphHook; one GPU)'),
    Setting(
        name='val_batch_size',
        kind=int,
        default=1,
        doc='whole images per validation/test batch, batched by shape',
        minimum=1),
    Setting(
        name='checkpoints_per_step',
        kind=int,
        default=None,
        doc='at least this many checkpoints per step (the checkpoint '
        'interval drops to ceil(iterations / n)): a hard kill loses at most '
        '1/n of a step (None: the interval as configured)',
        minimum=1,
        optional=True),
    Setting(
        name='step0_store',
        kind=str,
        default=None,
        doc='folder of the M_0 shared by experiments (None: step0_store '
        'next to the work dir)',
        optional=True),
    Setting(
        name='step0_store_timeout',
        kind=(int, float),
        default=24 * 3600.0,
        doc='seconds to wait for an M_0 that another experiment trains',
        minimum=0),
)
#: The settings by name.
SETTINGS_BY_NAME: Dict[str, Setting] = {s.name: s for s in SETTINGS}
#: Top-level keys of the experiment that the step configs do not keep.
EXPERIMENT_KEYS = tuple(s.name for s in SETTINGS if not s.mmseg_scalar)


def setting_value(cfg: Config, name: str) -> Any:
    """The config's value of setting ``name``, or (a copy of) its
    default."""
    if name in cfg:
        return cfg[name]
    return copy.deepcopy(SETTINGS_BY_NAME[name].default)


def _builtin(value: Any) -> Any:
    """ConfigDicts (and the dicts inside lists/tuples) as plain dicts."""
    if isinstance(value, (ConfigDict, dict)):
        return {k: _builtin(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_builtin(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_builtin(v) for v in value)
    return value


@functools.lru_cache(maxsize=None)
def segmentor_arguments() -> FrozenSet[str]:
    """The arguments that the incremental segmentors add to mmseg's
    ``EncoderDecoder`` (what ``incremental`` may hold)."""
    from mmseg.registry import MODELS

    def arguments(cls) -> set:
        names = set()
        for klass in inspect.getmro(cls):
            try:
                params = inspect.signature(
                    vars(klass)['__init__']).parameters.values()
            except (KeyError, TypeError, ValueError):  # none, or builtin
                continue
            names |= {
                p.name
                for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            }
        return names - {'self'}

    base = MODELS.get('EncoderDecoder')
    found = set()
    for name in ('IncrementalEncoderDecoder', 'DistillEncoderDecoder'):
        cls = MODELS.get(name)
        if cls is not None:
            found |= arguments(cls)
    return frozenset(found - (arguments(base) if base else set()))


def _close(key: str, names: Iterable[str]) -> Optional[str]:
    match = difflib.get_close_matches(
        key.lower(), list(names), n=1, cutoff=CLOSE_MATCH_CUTOFF)
    return match[0] if match else None


def _misspellings(cfg: Config, cli_keys: FrozenSet[str]) -> List[str]:
    """One line per top-level key that looks like a misspelt setting."""
    problems = []
    for key in sorted(cfg.keys()):
        if key in SETTINGS_BY_NAME or key in MMSEG_TOP_LEVEL_KEYS or \
                key.startswith('_'):
            continue
        near = _close(key, SETTINGS_BY_NAME)
        if near is not None:
            problems.append(
                f'{key}={cfg[key]!r} is no setting; did you mean {near}? '
                '(a misspelt setting would be ignored; docs/settings.md '
                'lists the settings)')
            continue
        if key not in cli_keys:
            continue  # a config's helper variable may share the name
        arguments = segmentor_arguments()
        near = key if key in arguments else _close(key, arguments)
        if near is not None:
            problems.append(
                f'{key}={cfg[key]!r} is no top-level setting; did you mean '
                f'incremental.{near}? (an argument of the incremental '
                f'segmentor: --cfg-options incremental.{near}=...)')
    return problems


def check_settings(cfg: Config,
                   cli_keys: Optional[Iterable[str]] = None) -> dict:
    """Check the settings of ``cfg``; return every setting's value.

    Args:
        cfg (Config): The experiment config.
        cli_keys (Iterable[str]): The ``--cfg-options`` keys (``a.b``:
            top-level ``a``); they are also checked against the
            incremental segmentor's arguments. Defaults to None.

    Returns:
        dict: Setting name -> its value (the config's, else the default;
        plain dicts). ``cfg`` is not changed: its fingerprint stays.

    Raises:
        ValueError: One, listing every misspelt key and every value that
            a setting does not allow.
    """
    cli = frozenset(str(k).split('.')[0] for k in cli_keys or ())
    problems = _misspellings(cfg, cli)
    values = {}
    for setting in SETTINGS:
        if setting.name not in cfg:
            if setting.required:
                problems.append(
                    f'The config has no top-level `{setting.name}` '
                    f'({setting.doc}); set it to {setting.allowed} (see '
                    'configs/il/).')
            values[setting.name] = copy.deepcopy(setting.default)
            continue
        value = _builtin(cfg[setting.name])
        try:
            setting.validate(value)
        except ValueError as err:
            problems.append(str(err))
        values[setting.name] = value
    if problems:
        raise ValueError('\n'.join(problems))
    return values


def setting_sources(
        cfg: Config,
        cli_keys: Optional[Iterable[str]] = None) -> Dict[str, str]:
    """Where each setting's value came from: ``'default'``, ``'config'``
    (the config file or its bases) or ``'--cfg-options'`` (a key
    ``name`` or ``name.<...>`` on the command line)."""
    cli = {str(k).split('.')[0] for k in cli_keys or ()}
    sources = {}
    for setting in SETTINGS:
        sources[setting.name] = 'default'
        if setting.name in cli:
            sources[setting.name] = '--cfg-options'
        elif setting.name in cfg:
            sources[setting.name] = 'config'
    return sources


def _cell(text: str) -> str:
    return text.replace('|', '\\|')


def _default_text(setting: Setting) -> str:
    if setting.required:
        return 'required'
    if isinstance(setting.default, dict) and not setting.default:
        return '`dict()`'
    return f'`{setting.default!r}`'


#: What docs/settings.md says after the table.
_NOTES = """\
## Where a value comes from

`python tools/train_incremental.py CONFIG --dry-run` lists every setting
with its value and its source: `default` (this table), `config` (the
config file or one of its bases) or `--cfg-options` (the command line).
The shipped bases set several settings explicitly, as the paper's values:
`configs/_base_/schedules/ilt_schedule.py` sets `iters_per_class = 1000`,
`lr_step0 = 1e-4`, `lr_incremental = 5e-5` and `lr_min = 1e-6` (equal to
the defaults, which live in `mmseg_incremental/planning/settings.py`
only), the MiB/PLOP setups their own.

## Checks

Before anything is written to the work dir, a value outside the
`allowed` column is refused with one error naming the key, the value and
what is allowed. A top-level key that is close to a setting's name but is
none (`iters_per_clas`) is refused as a misspelling ("did you mean
iters_per_class?"); so is a `--cfg-options` key close to an argument of
the incremental segmentor (`teacher_cahce`: "did you mean
incremental.teacher_cache?"). mmengine's and mmseg's own keys
(`model`, `train_dataloader`, `norm_cfg`, ...) and a config's helper
variables far from every setting's name are never refused.
`incremental`'s contents are checked by the segmentor.

## data_root

The top-level `data_root` is the root of every incremental dataset (train,
val and test) that did not set its own. A dataset whose `data_root` is a
top-level `data_root` of the config file or of one of its bases (the
shipped dataset bases write `data_root=data_root`) follows the top-level
value, so `--cfg-options data_root=/data/voc`, or `data_root = ...` in a
config that inherits ours, moves every dataset. A dataset-level value set
for that dataset (`--cfg-options train_dataloader.dataset.data_root=X`, or
`data_root=X` inside a dataloader of a config) is kept, as in mmseg: it
is never replaced by the top-level value (an INFO line names both). With
`data_root = None` every dataset keeps its own.
"""


def settings_markdown() -> str:
    """The text of ``docs/settings.md`` (``tools/settings_table.py``)."""
    lines = [
        '# Settings of an experiment config', '',
        '<!-- Generated from mmseg_incremental/planning/settings.py by '
        'tools/settings_table.py; do not edit. -->', '',
        'An experiment config is an mmseg config (step 0 trains with '
        "mmseg's", '`tools/train.py`) plus these top-level settings. '
        '`EXPERIMENT_KEYS` are', 'removed from the step configs; '
        '`data_root`, `crop_size`, `pretrained` and',
        '`total_batch_size` are mmseg-style variables that the steps keep '
        'and the', 'planner applies where they belong.', '',
        '| setting | type | default | allowed | what it decides |',
        '|---|---|---|---|---|'
    ]
    for s in SETTINGS:
        lines.append(f'| `{s.name}` | {s.type_name} | {_default_text(s)} | '
                     f'{_cell(s.allowed)} | {_cell(s.doc)} |')
    return '\n'.join(lines) + '\n\n' + _NOTES
