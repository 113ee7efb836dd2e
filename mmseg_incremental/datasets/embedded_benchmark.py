"""The embedded benchmark: a synthetic Pascal VOC dataset made from a seed.

No real multi-class segmentation dataset can be installed offline, so the
project generates one (DESIGN §7). :func:`generate_benchmark` writes a real
VOC tree that mmseg's ``PascalVOCDataset`` loads unchanged:

.. code:: text

    out_dir/
      JPEGImages/<id>.jpg               RGB images
      SegmentationClass/<id>.png        'P'-mode PNGs, VOC palette, ids
                                        0..20 and a 255 (void) border band
      ImageSets/Segmentation/train.txt  image ids, one per line
      ImageSets/Segmentation/val.txt
      benchmark.json                    parameters and statistics

The 21 VOC classes keep their ids. Every foreground class has its own
appearance: a shape family, two colours and a texture. Four pairs are alike
on purpose and differ in one cue only, so that forgetting an old class shows
as confusion with a new one (cow/sheep: spots vs wool; chair/sofa: aspect;
cat/dog: colour; bus/train: stripe width). Images are scenes (indoor,
vehicles, animals; person anywhere) on textured, cluttered backgrounds, with
VOC-like class frequencies (``VOC_IMAGE_COUNTS``), 1 to 4 objects and mostly
a single foreground class, so every step of the 15-1, 15-5 and 19-1 tasks
keeps enough images under the paper's sequential rule.

Only numpy and Pillow are used (no mmseg, no mmcv), everything is vectorised
per image, and the output is byte-identical for a given seed.

.. code:: python

    >>> stats = generate_benchmark('data/embedded_voc')  # seconds
    >>> stats['train']['num_images'], stats['val']['num_images']
    (1500, 300)
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

# yapf: disable
#: The 21 class names, as mmseg's ``PascalVOCDataset.METAINFO['classes']``.
VOC_CLASSES: Tuple[str, ...] = (
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
    'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
# yapf: enable


def voc_palette(num: int = 256) -> np.ndarray:
    """The VOC colour map: the bits of each id spread over R, G and B.

    Args:
        num (int): Number of entries. Defaults to 256.

    Returns:
        np.ndarray: ``(num, 3)`` uint8; entry 255 is (224, 224, 192).
    """
    ids = np.arange(num)
    rgb = np.zeros((num, 3), dtype=np.int64)
    for j in range(8):
        for ch in range(3):
            rgb[:, ch] |= ((ids >> (3 * j + ch)) & 1) << (7 - j)
    return rgb.astype(np.uint8)


#: The 256-entry VOC palette as ``(r, g, b)`` tuples.
VOC_PALETTE: Tuple[Tuple[int, int, int], ...] = tuple(
    tuple(int(x) for x in c) for c in voc_palette())

# yapf: disable
#: Images holding each class in VOC 2012 ``train`` (1,464 images); the
#: generator's class frequencies follow them (person is the most frequent).
VOC_IMAGE_COUNTS: Dict[int, int] = {
    1: 88, 2: 65, 3: 105, 4: 78, 5: 87, 6: 78, 7: 128, 8: 131, 9: 148,
    10: 64, 11: 82, 12: 121, 13: 68, 14: 81, 15: 442, 16: 82, 17: 63,
    18: 93, 19: 83, 20: 84}
# yapf: enable

#: Foreground classes of each scene type; person (15) appears in all.
SCENES: Dict[str, Tuple[int, ...]] = {
    'indoor': (5, 9, 11, 16, 18, 20),
    'vehicles': (1, 2, 4, 6, 7, 14, 19),
    'animals': (3, 8, 10, 12, 13, 17),
}
PERSON = 15

#: Pairs of classes that differ in a single cue (DESIGN §7).
LOOKALIKES: Tuple[Tuple[int, int, str], ...] = (
    (10, 17, 'texture: spots (cow) vs wool (sheep)'),
    (9, 18, 'aspect: tall (chair) vs wide (sofa)'),
    (8, 12, 'colour: orange (cat) vs brown (dog)'),
    (6, 19, 'cycles: wide (bus) vs narrow (train) stripes'),
)

#: Bump when the output for a given seed changes; stored in the manifest so
#: that a benchmark from older code is never taken for a current one.
GENERATOR_VERSION = 1
MANIFEST = 'benchmark.json'
FORMAT = 'mmseg_incremental.embedded_benchmark'
SPLITS = ('train', 'val')

Colour = Tuple[int, int, int]


@dataclass(frozen=True)
class Appearance:
    """How the instances of one class look.

    Args:
        shape (str): Shape family (see ``_shape_mask``).
        aspect (float): Width / height of the shape's box.
        colour (tuple[int]): Main RGB colour.
        colour2 (tuple[int]): Second RGB colour the texture mixes in.
        texture (str): Texture (see ``_texture``).
        rotation (float): Largest rotation in degrees. Defaults to 8.
        cycles (float): Texture periods across the box's short side.
            Defaults to 4.
    """

    shape: str
    aspect: float
    colour: Colour
    colour2: Colour
    texture: str
    rotation: float = 8
    cycles: float = 4


# yapf: disable
APPEARANCES: Dict[int, Appearance] = {
    1: Appearance('plane', 1.6, (205, 205, 215), (95, 105, 130), 'gradient',
                  12),
    2: Appearance('two_rings', 2.0, (30, 110, 210), (15, 50, 110),
                  'gradient'),
    3: Appearance('triangle', 1.1, (240, 205, 40), (140, 100, 20), 'noise',
                  180),
    4: Appearance('boat', 1.5, (205, 40, 40), (240, 240, 240), 'stripes_h'),
    5: Appearance('bottle', 0.45, (40, 150, 70), (170, 235, 180),
                  'gradient', 6),
    6: Appearance('rect', 1.8, (235, 185, 30), (40, 40, 50), 'stripes_v',
                  10, 3),
    7: Appearance('car', 1.9, (30, 160, 165), (10, 70, 80), 'gradient', 6),
    8: Appearance('ellipse', 1.35, (215, 130, 50), (120, 60, 20),
                  'stripes_h', 20),
    9: Appearance('lshape', 0.7, (150, 100, 50), (95, 60, 30), 'stripes_v',
                  5),
    10: Appearance('quadruped', 1.5, (230, 225, 215), (90, 85, 80), 'dots'),
    11: Appearance('table', 1.6, (215, 175, 115), (250, 250, 240),
                   'checker', 5),
    12: Appearance('ellipse', 1.35, (165, 110, 75), (120, 60, 20),
                   'stripes_h', 20),
    13: Appearance('quadruped', 1.3, (110, 60, 30), (40, 20, 10),
                   'gradient'),
    14: Appearance('motorbike', 1.8, (125, 40, 165), (25, 25, 30),
                   'checker'),
    16: Appearance('plant', 0.8, (50, 145, 40), (185, 90, 50), 'plant', 5),
    17: Appearance('quadruped', 1.5, (230, 225, 215), (90, 85, 80), 'wool'),
    18: Appearance('lshape', 1.9, (150, 100, 50), (95, 60, 30), 'stripes_v',
                   5),
    19: Appearance('rect', 1.8, (235, 185, 30), (40, 40, 50), 'stripes_v',
                   10, 4.5),
    20: Appearance('screen', 1.3, (45, 45, 50), (60, 95, 190), 'screen', 5),
}
#: A person wears one of these; the texture adds a skin-coloured head.
PERSON_CLOTHES: Tuple[Colour, ...] = ((200, 40, 40), (40, 60, 160),
                                      (60, 60, 60), (225, 225, 225),
                                      (60, 140, 60), (230, 200, 60))
PERSON_APPEARANCE = Appearance('person', 0.45, (200, 40, 40),
                               (230, 180, 140), 'person')

#: Scene backgrounds: (upper colours, lower colours, horizon range).
_BACKGROUNDS: Dict[str, Tuple[Tuple[Colour, ...], Tuple[Colour, ...],
                              Tuple[float, float]]] = {
    'indoor': (((200, 185, 160), (175, 178, 185), (170, 185, 160)),
               ((110, 110, 125), (150, 140, 130), (90, 95, 90)),
               (0.55, 0.8)),
    'vehicles': (((150, 190, 230), (190, 205, 225), (120, 160, 210)),
                 ((100, 100, 105), (60, 100, 140), (130, 125, 115)),
                 (0.35, 0.65)),
    'animals': (((150, 190, 230), (190, 205, 225), (170, 175, 190)),
                ((80, 140, 60), (150, 130, 90), (100, 150, 80)),
                (0.25, 0.5)),
}
# yapf: enable
_CLUTTER_SHAPES = ('ellipse', 'rect', 'triangle', 'diamond')
_CLUTTER_TEXTURES = ('flat', 'noise', 'stripes_h', 'stripes_v', 'checker',
                     'dots')
#: Probability of 1, 2 or 3 foreground classes in an image.
_NUM_CLASSES_P = (0.62, 0.28, 0.10)
_MAX_OBJECTS = 4
_SCENE_WEIGHTS = np.array(
    [sum(VOC_IMAGE_COUNTS[c] for c in cls) for cls in SCENES.values()],
    np.float64)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shape family in box coordinates (the box is [-1, 1]^2, y down)."""
    au, av = np.abs(u), np.abs(v)
    if shape == 'ellipse':
        return u * u + v * v <= 1
    if shape == 'rect':
        return (au <= 1) & (av <= 1)
    if shape == 'diamond':
        return au + av <= 1
    if shape == 'triangle':
        return (v <= 1) & (au <= (v + 1) / 2)
    if shape == 'quadruped':
        body = ((u + 0.1) / 0.75)**2 + ((v + 0.15) / 0.45)**2 <= 1
        head = ((u - 0.72) / 0.28)**2 + ((v + 0.5) / 0.3)**2 <= 1
        legs = ((np.abs(u + 0.55) <= 0.1) |
                (np.abs(u - 0.3) <= 0.1)) & (v >= 0.1) & (
                    v <= 1)
        return body | head | legs
    if shape == 'plane':
        body = (av <= 0.2) & (au <= 1)
        wings = (np.abs(u - 0.05) <= 0.22) & (av <= 1)
        tail = (np.abs(u + 0.88) <= 0.12) & (v >= -0.6) & (v <= 0.2)
        return body | wings | tail
    if shape in ('two_rings', 'motorbike'):
        rho = np.minimum((u + 0.5)**2, (u - 0.5)**2) / 0.25 + v * v
        if shape == 'two_rings':
            bar = (au <= 0.5) & (np.abs(v + 0.1) <= 0.15)
            return ((rho <= 1) & (rho >= 0.25)) | bar
        body = (au <= 0.55) & (v >= -0.8) & (v <= 0.2)
        return (rho <= 0.7) | body
    if shape == 'boat':
        hull = (v >= 0) & (u * u + v * v <= 1)
        sail = (v < 0) & (v >= -1) & (u >= -0.05) & (u <= 0.6 * (v + 1))
        return hull | sail
    if shape == 'bottle':
        return (au <= 1) & (av <= 1) & ((v >= -0.3) | (au <= 0.4))
    if shape == 'car':
        body = (au <= 1) & (v >= -0.15) & (v <= 0.55)
        cabin = (v >= -0.8) & (v < -0.15) & (au <= 0.3 + 0.3 * (v + 0.8))
        wheels = (np.minimum((u - 0.6)**2,
                             (u + 0.6)**2) / 0.05 + ((v - 0.6) / 0.4)**2) <= 1
        return body | cabin | wheels
    if shape == 'lshape':
        back = (u <= -0.45) & (au <= 1) & (av <= 1)
        seat = (v >= 0.05) & (v <= 0.6) & (au <= 1)
        leg = (np.abs(u - 0.85) <= 0.15) & (v >= 0.6) & (v <= 1)
        return back | seat | leg
    if shape == 'table':
        top = (v >= -1) & (v <= -0.55) & (au <= 1)
        legs = (np.abs(au - 0.75) <= 0.13) & (v > -0.55) & (v <= 1)
        return top | legs
    if shape == 'plant':
        theta = np.arctan2(v + 0.3, u)
        rho = np.hypot(u / 0.95, (v + 0.3) / 0.7)
        leaves = rho <= 0.6 + 0.4 * np.cos(5 * theta)
        pot = (v >= 0.35) & (v <= 1) & (au <= 0.5 - 0.2 * (v - 0.35))
        return leaves | pot
    if shape == 'screen':
        return ((au <= 1) & (v >= -1) &
                (v <= 0.75)) | ((au <= 0.15) & (v > 0.75) &
                                (v <= 0.9)) | ((au <= 0.5) & (v > 0.9) &
                                               (v <= 1))
    if shape == 'person':
        head = (u / 0.5)**2 + ((v + 0.75) / 0.25)**2 <= 1
        body = (u / 0.85)**2 + ((v - 0.25) / 0.75)**2 <= 1
        return head | body
    raise ValueError(f'Unknown shape family {shape!r}.')


def _texture(texture: str, x: np.ndarray, y: np.ndarray, u: np.ndarray,
             v: np.ndarray, period: float,
             rng: np.random.Generator) -> np.ndarray:
    """Weight of the second colour in [0, 1] (x, y in object pixels)."""
    if texture == 'flat':
        return np.zeros_like(x)
    if texture == 'gradient':
        return np.clip(u + 1, 0, 2) * 0.4
    if texture == 'stripes_h':
        return (y / period) % 1 < 0.5
    if texture == 'stripes_v':
        return (x / period) % 1 < 0.5
    if texture == 'checker':
        return (np.floor(x / period) + np.floor(y / period)) % 2
    if texture == 'dots':
        px = (x / period) % 1 - 0.5
        py = (y / period + 0.5 * np.floor(x / period)) % 1 - 0.5
        return px * px + py * py <= 0.09
    if texture == 'wool':
        return rng.random(x.shape, dtype=np.float32) * 0.45
    if texture == 'noise':
        return rng.random(x.shape, dtype=np.float32) * 0.7
    if texture == 'screen':
        inner = (np.abs(u) <= 0.8) & (v >= -0.8) & (v <= 0.55)
        return inner * (0.7 + 0.3 * np.clip(-v, 0, 1))
    if texture == 'person':
        return v <= -0.48
    if texture == 'plant':
        return v >= 0.35
    raise ValueError(f'Unknown texture {texture!r}.')


def _smooth_noise(rng: np.random.Generator, size: int,
                  cells: int) -> np.ndarray:
    """Bilinear upsampling of a ``(cells+1)^2`` random grid to ``size^2``."""
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    t = np.linspace(0, cells, size, endpoint=False, dtype=np.float32)
    i = t.astype(np.int64)
    f = t - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None] + rows[:, i + 1] * f[None]


def _jitter(rng: np.random.Generator, colour: Colour, amount: float,
            brightness: float) -> np.ndarray:
    jittered = np.asarray(colour) + rng.normal(0, amount, 3)
    return (jittered * brightness).astype(np.float32)


class _Canvas:
    """The image being drawn and its label map.

    Every shape is drawn in the window around its bounding circle, in the
    object's frame: (x, y) are pixels along the object's own axes, (u, v)
    the same scaled so that the shape's box is [-1, 1]^2.
    """

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.coords = np.arange(size, dtype=np.float32)
        self.image = np.zeros((size, size, 3), np.float32)
        self.label = np.zeros((size, size), np.uint8)

    def draw(self,
             shape: str,
             texture: str,
             colour: np.ndarray,
             colour2: np.ndarray,
             cx: float,
             cy: float,
             hw: float,
             hh: float,
             angle: float,
             flip: bool,
             cycles: float,
             label: Optional[int] = None) -> None:
        """Paint one shape (and its label, unless it is clutter)."""
        radius = float(np.hypot(hw, hh)) + 1
        x0, x1 = max(0, int(cx - radius)), min(self.size, int(cx + radius) + 2)
        y0, y1 = max(0, int(cy - radius)), min(self.size, int(cy + radius) + 2)
        if x0 >= x1 or y0 >= y1:
            return
        dx = (self.coords[x0:x1] - cx)[None]
        dy = (self.coords[y0:y1] - cy)[:, None]
        c, s = float(np.cos(angle)), float(np.sin(angle))
        x, y = c * dx + s * dy, c * dy - s * dx
        if flip:
            x = -x
        u, v = x / hw, y / hh
        mask = _shape_mask(shape, u, v)
        period = max(3.0, 2 * min(hw, hh) / cycles)
        w = _texture(texture, x, y, u, v, period, self.rng)[mask]
        shade = (1 + 0.12 * (u * c + v * s))[mask]
        w, shade = w[:, None], shade[:, None]
        window = self.image[y0:y1, x0:x1]
        window[mask] = (colour * (1 - w) + colour2 * w) * shade
        if label is not None:
            self.label[y0:y1, x0:x1][mask] = label

    def background(self, scene: str) -> None:
        """Two-tone scene with a wavy horizon, lighting, grain, clutter."""
        rng, size = self.rng, self.size
        uppers, lowers, (lo, hi) = _BACKGROUNDS[scene]
        upper = _jitter(rng, uppers[rng.integers(len(uppers))], 12, 1)
        lower = _jitter(rng, lowers[rng.integers(len(lowers))], 12, 1)
        horizon = size * rng.uniform(lo, hi) + 3 * np.sin(
            self.coords / size * rng.uniform(2, 6) + rng.uniform(0, 6))
        mix = np.clip((self.coords[:, None] - horizon[None]) / 2 + 0.5, 0,
                      1).astype(np.float32)[..., None]
        light = 1 + 0.35 * (_smooth_noise(rng, size, 4) - 0.5)
        grain = 40 * (_smooth_noise(rng, size, size // 4) - 0.5)
        self.image = (upper + (lower - upper) * mix) * light[..., None] + (
            grain[..., None] * mix)
        for _ in range(rng.integers(0, 6)):  # clutter stays background
            half = size * rng.uniform(0.05, 0.15)
            aspect = rng.uniform(0.4, 2.5)
            # Mostly muted colours, sometimes as vivid as the objects.
            colour = rng.uniform(50, 210) + rng.normal(
                0, 25 if rng.random() < 0.7 else 70, 3)
            self.draw(_CLUTTER_SHAPES[rng.integers(len(_CLUTTER_SHAPES))],
                      _CLUTTER_TEXTURES[rng.integers(len(_CLUTTER_TEXTURES))],
                      colour.astype(np.float32),
                      (colour * 0.6).astype(np.float32), rng.uniform(0, size),
                      rng.uniform(0, size), half * np.sqrt(aspect),
                      half / np.sqrt(aspect), rng.uniform(0, np.pi), False,
                      rng.uniform(2, 5))


def _border_band(label: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (Chebyshev) of a pixel of another label."""
    size = label.shape[0]
    padded = np.pad(label, radius, mode='edge')
    band = np.zeros(label.shape, bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy or dx:
                shifted = padded[radius + dy:radius + dy + size,
                                 radius + dx:radius + dx + size]
                band |= shifted != label
    return band


def _pick(rng: np.random.Generator, weights: np.ndarray) -> int:
    """Index drawn with probability proportional to ``weights``."""
    cum = np.cumsum(weights)
    return int(np.searchsorted(cum, rng.random() * cum[-1], side='right'))


def _choose_classes(rng: np.random.Generator) -> Tuple[str, List[int]]:
    """A scene and its foreground classes, VOC-like frequencies."""
    scene = list(SCENES)[_pick(rng, _SCENE_WEIGHTS)]
    pool = list(SCENES[scene]) + [PERSON]
    # Person joins every scene type, so each scene draws it a third as
    # often as its VOC count alone would.
    weights = np.array([VOC_IMAGE_COUNTS[c] for c in pool], np.float64)
    weights[-1] = VOC_IMAGE_COUNTS[PERSON] / 3.0
    chosen = []
    for _ in range(1 + _pick(rng, np.asarray(_NUM_CLASSES_P))):
        i = _pick(rng, weights)
        chosen.append(pool[i])
        weights[i] = 0
    return scene, chosen


def _render(size: int,
            rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, str]:
    """Draw one image; returns (uint8 RGB, uint8 label map, scene)."""
    scene, classes = _choose_classes(rng)
    objects = list(classes)
    for c in classes:
        if len(objects) < _MAX_OBJECTS and rng.random() < 0.25:
            objects.append(c)
    canvas = _Canvas(size, rng)
    canvas.background(scene)
    n = len(objects)
    lo, hi = {1: (0.25, 0.38), 2: (0.18, 0.28)}.get(n, (0.14, 0.22))
    halves = np.sort(rng.uniform(lo, hi, n) * size)[::-1]
    placed: List[Tuple[float, float, float]] = []  # centre, radius
    for cls, half in zip(rng.permutation(objects), halves):
        cls = int(cls)
        look = APPEARANCES.get(cls, PERSON_APPEARANCE)
        colour = look.colour
        if cls == PERSON:
            colour = PERSON_CLOTHES[rng.integers(len(PERSON_CLOTHES))]
        aspect = look.aspect * rng.uniform(0.9, 1.1)
        hw, hh = half * np.sqrt(aspect), half / np.sqrt(aspect)
        margin = min(0.7 * max(hw, hh), size / 2)
        for _ in range(20):  # partial occlusion at most
            cx, cy = rng.uniform(margin, size - margin, 2)
            if all(
                    np.hypot(cx - px, cy - py) >= 0.8 * (half + r)
                    for px, py, r in placed):
                break
        else:
            continue
        placed.append((cx, cy, half))
        brightness = rng.uniform(0.75, 1.25)
        canvas.draw(look.shape, look.texture,
                    _jitter(rng, colour, 18, brightness),
                    _jitter(rng, look.colour2, 18, brightness), cx, cy, hw, hh,
                    np.deg2rad(rng.uniform(-look.rotation, look.rotation)),
                    bool(rng.random() < 0.5), look.cycles, cls)
    label = canvas.label.copy()
    label[_border_band(canvas.label, max(1, round(size / 64)))] = 255
    noise = rng.random(canvas.image.shape, dtype=np.float32) - 0.5
    image = canvas.image + 32 * noise
    np.clip(image, 0, 255, out=image)
    return (image + 0.5).astype(np.uint8), label, scene


def _image_ids(split: str, num: int) -> List[str]:
    return [f'{split}_{i:06d}' for i in range(num)]


def _write_split(root: str, split: str, num: int, size: int,
                 seed: int) -> dict:
    """Write one split's images and masks; returns its statistics."""
    pixels = np.zeros(256, np.int64)
    images = np.zeros(256, np.int64)
    scenes = dict.fromkeys(SCENES, 0)
    num_fg: Dict[str, int] = {}
    palette = voc_palette().tobytes()
    ids = _image_ids(split, num)
    for i, img_id in enumerate(ids):
        rng = np.random.default_rng([seed, SPLITS.index(split), i])
        image, label, scene = _render(size, rng)
        Image.fromarray(image).save(
            osp.join(root, 'JPEGImages', f'{img_id}.jpg'),
            quality=90,
            subsampling=0)
        mask = Image.fromarray(label)
        mask.putpalette(palette)
        mask.save(osp.join(root, 'SegmentationClass', f'{img_id}.png'))
        counts = np.bincount(label.ravel(), minlength=256)
        pixels += counts
        images += counts > 0
        scenes[scene] += 1
        k = str(int((counts[1:len(VOC_CLASSES)] > 0).sum()))
        num_fg[k] = num_fg.get(k, 0) + 1
    with open(
            osp.join(root, 'ImageSets', 'Segmentation', f'{split}.txt'),
            'w') as f:
        f.write(''.join(f'{i}\n' for i in ids))
    total = float(pixels.sum())
    return dict(
        num_images=num,
        image_counts={
            n: int(images[c])
            for c, n in enumerate(VOC_CLASSES)
        },
        pixel_fractions={
            n: round(float(pixels[c] / total), 6)
            for c, n in enumerate(VOC_CLASSES)
        },
        void_fraction=round(float(pixels[255] / total), 6),
        scene_counts=scenes,
        images_by_num_classes=dict(sorted(num_fg.items())))


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f'{name} must be an integer, got {value!r}.')
    if not low <= value <= high:
        raise ValueError(f'{name}={value} is out of range; use a value in '
                         f'[{low}, {high}].')
    return int(value)


def _read_manifest(root: str) -> Optional[dict]:
    path = osp.join(root, MANIFEST)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as err:
        raise RuntimeError(
            f'{path} is not a readable embedded-benchmark manifest ({err}); '
            'delete the directory or pass overwrite=True.') from err
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        return None
    return manifest


def _is_complete(root: str, manifest: dict) -> bool:
    params = manifest['parameters']
    for split in SPLITS:
        path = osp.join(root, 'ImageSets', 'Segmentation', f'{split}.txt')
        if not osp.isfile(path):
            return False
        with open(path) as f:
            ids = f.read().split()
        if ids != _image_ids(split, params[f'num_{split}']):
            return False
        if not all(
                osp.isfile(osp.join(root, 'JPEGImages', f'{i}.jpg')) and
                osp.isfile(osp.join(root, 'SegmentationClass', f'{i}.png'))
                for i in ids):
            return False
    return True


def _replace_dir(tmp: str, root: str) -> None:
    """Move ``tmp`` to ``root``; an old ``root`` is removed afterwards."""
    old = None
    if osp.isdir(root):
        if os.listdir(root):
            old = tempfile.mkdtemp(
                prefix=f'.{osp.basename(root)}.old-', dir=osp.dirname(root))
            os.rename(root, osp.join(old, 'benchmark'))
        else:
            os.rmdir(root)
    os.rename(tmp, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def generate_benchmark(out_dir: str,
                       num_train: int = 1500,
                       num_val: int = 300,
                       image_size: int = 64,
                       seed: int = 0,
                       overwrite: bool = False) -> dict:
    """Write the embedded benchmark (a VOC tree) and return its statistics.

    The defaults fit the demo: 64 px images keep one training of a tiny
    ResNet within tens of seconds on 2 CPU cores while objects stay
    recognisable (32-48 px across when alone, 18-28 px when 3-4 share an
    image), and 1,500 training images leave every step of 15-1, 15-5 and
    19-1 more than 60 images under the sequential rule (fg ∩ U_k ≠ ∅ and
    fg ⊆ S_k). 300 val images hold every class. Generation takes a few
    seconds (~3-4 ms per image).

    Idempotent: when ``out_dir`` already holds a complete benchmark with the
    same parameters its statistics are returned and nothing is written. The
    tree is built in a hidden sibling directory and renamed into place at
    the end, so an interrupted run never looks complete.

    Args:
        out_dir (str): Directory of the VOC tree (created if missing).
        num_train (int): Number of training images. Defaults to 1500.
        num_val (int): Number of validation images. Defaults to 300.
        image_size (int): Side of the square images in pixels; the void
            band on object borders is ``2 * max(1, round(size / 64))`` px
            wide. Defaults to 64.
        seed (int): Seed; the same seed gives byte-identical files.
            Defaults to 0.
        overwrite (bool): Replace a benchmark of ``out_dir`` that was made
            with other parameters (or is incomplete). A directory that is
            not a benchmark is never replaced. Defaults to False.

    Returns:
        dict: ``{'train': s, 'val': s}`` where ``s`` holds ``num_images``,
        ``image_counts`` and ``pixel_fractions`` (class name -> images
        holding the class / fraction of all pixels), ``void_fraction``,
        ``scene_counts`` and ``images_by_num_classes`` (number of foreground
        classes -> images).
    """
    params = dict(
        num_train=_check_int('num_train', num_train, 1, 10**6),
        num_val=_check_int('num_val', num_val, 1, 10**6),
        image_size=_check_int('image_size', image_size, 32, 2048),
        seed=_check_int('seed', seed, 0, 2**63 - 1),
        version=GENERATOR_VERSION)
    root = osp.abspath(out_dir)
    if osp.exists(root) and not osp.isdir(root):
        raise NotADirectoryError(
            f'out_dir {root} exists and is not a directory; pass a '
            'directory path.')
    replace = osp.isdir(root) and bool(os.listdir(root))
    if replace:
        manifest = _read_manifest(root)
        if manifest is None:
            raise FileExistsError(
                f'out_dir {root} is not empty and holds no embedded '
                f'benchmark (no valid {MANIFEST}); refusing to write into '
                'it. Pass an empty or new directory.')
        same = manifest.get('parameters') == params
        complete = same and _is_complete(root, manifest)
        if complete:
            return manifest['stats']
        if not overwrite:
            problem = ('is incomplete' if same else
                       f'was made with parameters {manifest["parameters"]}, '
                       f'not {params}')
            raise FileExistsError(
                f'The embedded benchmark in {root} {problem}; pass '
                'overwrite=True to regenerate it, or use another out_dir.')
    parent = osp.dirname(root)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(root)}.tmp-', dir=parent)
    try:
        for sub in ('JPEGImages', 'SegmentationClass',
                    osp.join('ImageSets', 'Segmentation')):
            os.makedirs(osp.join(tmp, sub))
        stats = {
            split:
            _write_split(tmp, split, params[f'num_{split}'],
                         params['image_size'], params['seed'])
            for split in SPLITS
        }
        manifest = dict(
            format=FORMAT,
            parameters=params,
            classes=list(VOC_CLASSES),
            lookalikes=[list(p) for p in LOOKALIKES],
            stats=stats)
        with open(osp.join(tmp, MANIFEST), 'w') as f:
            json.dump(manifest, f, indent=2)
            f.write('\n')
        if not replace and osp.isdir(root) and os.listdir(root):
            # Another process wrote ``root`` meanwhile; never mix.
            other = _read_manifest(root)
            if other is None or other.get('parameters') != params or (
                    not _is_complete(root, other)):
                raise FileExistsError(
                    f'{root} was filled by another process during the '
                    'generation; check it, then call again.')
            return other['stats']
        _replace_dir(tmp, root)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(json.dumps(stats))
