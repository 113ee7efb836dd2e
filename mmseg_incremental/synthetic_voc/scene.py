"""Scene composition: which classes an image holds, and where they stand.

A scene is drawn in two stages. :func:`compose_scene` samples everything
that defines the image's content (the scene type, its classes with VOC-like
frequencies, the background colours, clutter and objects with their pose
and colour); :mod:`.render` then paints it. Person joins every scene type.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from .appearance import (CLUTTER_SHAPES, CLUTTER_TEXTURES, PERSON_CLOTHES,
                         Colour, appearance_of)
from .voc_classes import PERSON, VOC_IMAGE_COUNTS

#: Foreground classes of each scene type; person (15) appears in all.
SCENES: Dict[str, Tuple[int, ...]] = {
    'indoor': (5, 9, 11, 16, 18, 20),
    'vehicles': (1, 2, 4, 6, 7, 14, 19),
    'animals': (3, 8, 10, 12, 13, 17),
}

# yapf: disable
#: Scene backgrounds: (upper colours, lower colours, horizon range).
BACKGROUNDS: Dict[str, Tuple[Tuple[Colour, ...], Tuple[Colour, ...],
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
#: Probability of 1, 2 or 3 foreground classes in an image.
NUM_CLASSES_P = (0.62, 0.28, 0.10)
MAX_OBJECTS = 4


@dataclass
class Shape:
    """One shape to paint: an object (``label`` set) or clutter (None).

    ``(cx, cy)`` is the centre in pixels, ``(hw, hh)`` the half width and
    height of the box, ``angle`` the rotation in radians.
    """

    shape: str
    texture: str
    colour: np.ndarray
    colour2: np.ndarray
    cx: float
    cy: float
    hw: float
    hh: float
    angle: float
    flip: bool
    cycles: float
    label: Optional[int] = None


@dataclass
class Scene:
    """The content of one image; ``horizon`` is a row per column."""

    kind: str
    upper: np.ndarray
    lower: np.ndarray
    horizon: np.ndarray
    clutter: List[Shape] = field(default_factory=list)
    objects: List[Shape] = field(default_factory=list)


def _jitter(rng: np.random.Generator,
            colour: Colour,
            amount: float,
            brightness: float = 1.0) -> np.ndarray:
    jittered = np.asarray(colour) + rng.normal(0, amount, 3)
    return (jittered * brightness).astype(np.float32)


def choose_classes(rng: np.random.Generator) -> Tuple[str, List[int]]:
    """A scene type and its foreground classes, VOC-like frequencies."""
    counts = [sum(VOC_IMAGE_COUNTS[c] for c in cls) for cls in SCENES.values()]
    kind = list(SCENES)[rng.choice(len(SCENES), p=_normed(counts))]
    pool = list(SCENES[kind]) + [PERSON]
    # Person joins every scene type, so each scene draws it a third as
    # often as its VOC count alone would.
    weights = [VOC_IMAGE_COUNTS[c] for c in pool]
    weights[-1] = VOC_IMAGE_COUNTS[PERSON] / 3.0
    num = 1 + rng.choice(len(NUM_CLASSES_P), p=NUM_CLASSES_P)
    chosen = rng.choice(len(pool), num, replace=False, p=_normed(weights))
    return kind, [pool[i] for i in chosen]


def _normed(weights: List[float]) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    return w / w.sum()


def _clutter(rng: np.random.Generator, size: int) -> Shape:
    """A muted (sometimes vivid) background shape that stays background."""
    half = size * rng.uniform(0.05, 0.15)
    aspect = rng.uniform(0.4, 2.5)
    colour = rng.uniform(50, 210) + rng.normal(
        0, 25 if rng.random() < 0.7 else 70, 3)
    return Shape(CLUTTER_SHAPES[rng.integers(len(CLUTTER_SHAPES))],
                 CLUTTER_TEXTURES[rng.integers(len(CLUTTER_TEXTURES))],
                 colour.astype(np.float32), (colour * 0.6).astype(np.float32),
                 rng.uniform(0, size), rng.uniform(0, size),
                 half * np.sqrt(aspect), half / np.sqrt(aspect),
                 rng.uniform(0, np.pi), False, rng.uniform(2, 5))


def _place(rng: np.random.Generator, size: int, classes: List[int]) -> \
        List[Shape]:
    """Objects of ``classes`` (some twice), overlapping partially at most."""
    objects = list(classes)
    for c in classes:
        if len(objects) < MAX_OBJECTS and rng.random() < 0.25:
            objects.append(c)
    n = len(objects)
    lo, hi = {1: (0.25, 0.38), 2: (0.18, 0.28)}.get(n, (0.14, 0.22))
    halves = np.sort(rng.uniform(lo, hi, n) * size)[::-1]
    placed: List[Shape] = []
    spots: List[Tuple[float, float, float]] = []  # centre, half size
    for cls, half in zip(rng.permutation(objects), halves):
        look = appearance_of(int(cls))
        colour = look.colour
        if cls == PERSON:
            colour = PERSON_CLOTHES[rng.integers(len(PERSON_CLOTHES))]
        aspect = look.aspect * rng.uniform(0.9, 1.1)
        hw, hh = half * np.sqrt(aspect), half / np.sqrt(aspect)
        margin = min(0.7 * max(hw, hh), size / 2)
        for _ in range(20):
            cx, cy = rng.uniform(margin, size - margin, 2)
            if all(
                    np.hypot(cx - px, cy - py) >= 0.8 * (half + r)
                    for px, py, r in spots):
                break
        else:
            continue
        spots.append((cx, cy, half))
        brightness = rng.uniform(0.75, 1.25)
        placed.append(
            Shape(look.shape, look.texture, _jitter(rng, colour, 18,
                                                    brightness),
                  _jitter(rng, look.colour2, 18, brightness), float(cx),
                  float(cy), hw, hh,
                  np.deg2rad(rng.uniform(-look.rotation, look.rotation)),
                  bool(rng.random() < 0.5), look.cycles, int(cls)))
    return placed


def compose_scene(rng: np.random.Generator, size: int) -> Scene:
    """Sample the content of one ``size`` x ``size`` image.

    Args:
        rng (np.random.Generator): The image's own generator.
        size (int): Side of the image in pixels.

    Returns:
        Scene: Background colours and horizon, clutter, and 1 to
        :data:`MAX_OBJECTS` objects of 1 to 3 classes of one scene type.
    """
    kind, classes = choose_classes(rng)
    uppers, lowers, (lo, hi) = BACKGROUNDS[kind]
    upper = _jitter(rng, uppers[rng.integers(len(uppers))], 12)
    lower = _jitter(rng, lowers[rng.integers(len(lowers))], 12)
    cols = np.arange(size, dtype=np.float32)
    horizon = size * rng.uniform(lo, hi) + 3 * np.sin(
        cols / size * rng.uniform(2, 6) + rng.uniform(0, 6))
    clutter = [_clutter(rng, size) for _ in range(rng.integers(0, 6))]
    return Scene(kind, upper, lower, horizon.astype(np.float32), clutter,
                 _place(rng, size, classes))
