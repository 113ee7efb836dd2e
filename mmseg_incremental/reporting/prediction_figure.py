"""A picture like the paper's Fig. 3: image | ground truth | predictions.

For each of N val images (evenly spread over the val split of the first
run's last step), one row: the RGB image, its ground truth, and the
prediction of every run's final model M_K. The model of a run is rebuilt
with mmseg's ``init_model`` from ``D/step_<K>/step_config.py`` and the
checkpoint named by ``D/step_<K>/step_done.json``; the ground truth is the
val dataset of that config (``test_dataloader.dataset``, else
``val_dataloader.dataset``) built through mmseg's registry and loaded with
mmseg's ``LoadAnnotations`` (label map applied, full resolution). Output
indices are mapped back to the dataset's class ids (``seen_classes`` of the
summary) and coloured with the dataset's palette (VOC's for VOC); void
(255) is VOC's cream colour.
"""
import glob
import json
import os.path as osp
import re
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .run_summary import RunSummary

VOID_COLOR = (224, 224, 192)


def last_step_files(work_dir: str) -> Tuple[int, str, str]:
    """(K, ``step_config.py``, checkpoint) of the last finished step."""
    done = []
    for path in glob.glob(osp.join(work_dir, 'step_*', 'step_done.json')):
        match = re.fullmatch(r'step_(\d+)', osp.basename(osp.dirname(path)))
        if match:
            done.append((int(match.group(1)), path))
    if not done:
        raise FileNotFoundError(
            f'No step_<k>/step_done.json under {work_dir!r}: predictions '
            'need a finished step; run the experiment (or pass images=0).')
    step, path = max(done)
    with open(path) as f:
        checkpoint = json.load(f).get('checkpoint')
    config = osp.join(osp.dirname(path), 'step_config.py')
    for what, file in (('config', config), ('checkpoint', checkpoint)):
        if not file or not osp.isfile(file):
            raise FileNotFoundError(
                f'The {what} of step {step} of {work_dir!r} ({file!r}) does '
                'not exist; the work dir was moved or is incomplete.')
    return step, config, checkpoint


def inference_config(config_path: str):
    """The step config with a top-level ``test_pipeline`` and, when its
    segmentor subclasses ``EncoderDecoder`` (``DistillEncoderDecoder``), a
    plain ``EncoderDecoder`` with the same backbone and head: inference
    needs no teacher, and the checkpoint's ``teacher.*`` keys are skipped by
    mmengine's non-strict loading."""
    import inspect

    from mmengine.config import Config
    from mmseg.models import EncoderDecoder
    from mmseg.registry import MODELS
    _import_plugin()
    cfg = Config.fromfile(config_path)
    segmentor = MODELS.get(cfg.model.get('type', ''))
    if segmentor is not None and segmentor is not EncoderDecoder and \
            issubclass(segmentor, EncoderDecoder):
        accepted = inspect.signature(EncoderDecoder.__init__).parameters
        for key in [k for k in cfg.model if k not in accepted]:
            cfg.model.pop(key)
        cfg.model.type = 'EncoderDecoder'
    if cfg.get('test_pipeline') is None:
        cfg.test_pipeline = _dataset_cfg(cfg, config_path).pipeline
    return cfg


def _dataset_cfg(cfg, config_path: str):
    for loader in ('test_dataloader', 'val_dataloader'):
        if cfg.get(loader) and cfg[loader].get('dataset'):
            return cfg[loader].dataset
    raise ValueError(f'{config_path} has no test_dataloader.dataset or '
                     'val_dataloader.dataset to take the val images from.')


def seen_ids(work_dir: str, step: int) -> Optional[List[int]]:
    """``seen_classes`` (class ids in output order) of ``step`` from the
    run's ``summary.json``; None if it has no such step (or no list)."""
    for result in RunSummary.load(work_dir).steps:
        if result.step == step:
            return list(result.seen_classes) or None
    return None


def colorize(label: np.ndarray, ids: Optional[Sequence[int]],
             palette: Sequence[Sequence[int]]) -> np.ndarray:
    """An ``(H, W)`` map of output indices as ``(H, W, 3)`` RGB: index i
    gets the colour of class id ``ids[i]`` (i itself if ``ids`` is None);
    255 gets the void colour."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[255] = VOID_COLOR
    ids = range(len(palette)) if ids is None else ids
    for i, c in enumerate(ids):
        lut[i] = palette[c]
    return lut[label.astype(np.uint8)]


def _colours(rgb: np.ndarray) -> set:
    """The distinct colours of an RGB picture as int tuples."""
    return {
        tuple(int(v) for v in c)
        for c in np.unique(rgb.reshape(-1, 3), axis=0)
    }


def _full_meta(dataset) -> Tuple[Sequence[str], Sequence, Optional[list]]:
    """Class names and palette of every class id of the dataset, and the
    ids of its output indices (None: identity)."""
    task = getattr(dataset, 'task', None)
    if task is not None and hasattr(type(dataset), 'METAINFO'):
        meta = type(dataset).METAINFO
        return meta['classes'], meta['palette'], list(
            task.seen_classes(dataset.step))
    return dataset.metainfo['classes'], dataset.metainfo['palette'], None


def _import_plugin() -> None:
    try:
        import mmseg_incremental  # noqa: F401
    except ImportError:  # a part under construction: datasets suffice
        import mmseg_incremental.datasets  # noqa: F401


class Panels(NamedTuple):
    """The pictures of the figure, RGB ``(H, W, 3)`` uint8 arrays.

    ``columns[r][i]`` is run r's prediction on image i; ``classes`` and
    ``palette`` cover every class id of the dataset.
    """

    img_paths: List[str]
    images: List[np.ndarray]
    gts: List[np.ndarray]
    columns: List[List[np.ndarray]]
    classes: Sequence[str]
    palette: Sequence[Sequence[int]]


def collect_panels(work_dirs: Sequence[str],
                   num_images: int,
                   device: str = 'cpu') -> Panels:
    """Load N val images and their ground truth (from the first run's last
    step config) and predict them with every run's final model."""
    _import_plugin()
    import mmcv
    from mmengine.registry import init_default_scope
    from mmseg.apis import inference_model, init_model
    from mmseg.datasets.transforms import LoadAnnotations
    from mmseg.registry import DATASETS

    _, config, _ = last_step_files(work_dirs[0])
    cfg = inference_config(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(_dataset_cfg(cfg, config))
    classes, palette, gt_ids = _full_meta(dataset)
    picks = sorted({
        int(round(i))
        for i in np.linspace(0,
                             len(dataset) - 1, min(num_images, len(dataset)))
    })
    infos = [dataset.get_data_info(i) for i in picks]
    images = [mmcv.imread(i['img_path'], channel_order='rgb') for i in infos]
    gts = []
    for info in infos:
        results = LoadAnnotations()(
            dict(
                seg_map_path=info['seg_map_path'],
                label_map=info.get('label_map'),
                reduce_zero_label=info.get('reduce_zero_label', False),
                seg_fields=[]))
        gts.append(colorize(results['gt_seg_map'], gt_ids, palette))
    columns = []
    for work_dir in work_dirs:
        k, config, checkpoint = last_step_files(work_dir)
        model = init_model(inference_config(config), checkpoint, device)
        ids = seen_ids(work_dir, k)
        preds = []
        for info in infos:
            result = inference_model(model, info['img_path'])
            label = result.pred_sem_seg.data[0].cpu().numpy()
            preds.append(colorize(label, ids, palette))
        columns.append(preds)
        del model
    return Panels([i['img_path'] for i in infos], images, gts, columns,
                  classes, palette)


def _legend(panels: Panels) -> List[Patch]:
    """A patch per class colour shown anywhere in the figure."""
    present = set().union(*[_colours(p) for p in panels.gts] +
                          [_colours(p) for col in panels.columns for p in col])
    legend = [
        Patch(color=np.array(colour) / 255, label=name)
        for name, colour in zip(panels.classes, panels.palette) if tuple(
            int(v) for v in colour) in present
    ]
    if VOID_COLOR in present:
        legend.append(
            Patch(color=np.array(VOID_COLOR) / 255, label='void (255)'))
    return legend


def render_panels(panels: Panels, names: Sequence[str], out_file: str) -> None:
    """Draw the rows image | ground truth | runs, with a legend of the
    classes shown, to ``out_file``."""
    titles = ['image', 'ground truth', *names]
    n_rows, n_cols = len(panels.images), len(titles)
    h, w = panels.images[0].shape[:2]
    legend = _legend(panels)
    ncol = max(1, min(len(legend), 2 * n_cols))
    cell, title_h = 2.4, 0.3
    legend_h = 0.15 + 0.22 * -(-len(legend) // ncol)
    height = (cell * h / w + 0.1) * n_rows + legend_h + title_h
    fig = Figure(figsize=(cell * n_cols, height))
    for r in range(n_rows):
        row = [panels.images[r], panels.gts[r]]
        row += [col[r] for col in panels.columns]
        for c, picture in enumerate(row):
            ax = fig.add_subplot(n_rows, n_cols, r * n_cols + c + 1)
            ax.imshow(picture, interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
    fig.legend(
        handles=legend,
        loc='lower center',
        ncol=ncol,
        fontsize=8,
        frameon=False)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=0.01,
        right=0.99,
        bottom=legend_h / height,
        top=1 - title_h / height,
        wspace=0.04,
        hspace=0.06)
    fig.savefig(out_file, dpi=100)


def draw_predictions(work_dirs: Sequence[str],
                     names: Sequence[str],
                     out_file: str,
                     num_images: int,
                     device: str = 'cpu') -> Panels:
    """Predict (:func:`collect_panels`) and draw (:func:`render_panels`)
    the picture to ``out_file``; return the panels.

    Args:
        work_dirs (Sequence[str]): Experiment work dirs.
        names (Sequence[str]): Column titles of the runs.
        out_file (str): The PNG to write.
        num_images (int): Number of val images (rows).
        device (str): Device of the models. Defaults to ``'cpu'``.
    """
    panels = collect_panels(work_dirs, num_images, device)
    render_panels(panels, names, out_file)
    return panels
