"""Rendering: paint a :class:`.scene.Scene` into an image and a label map.

.. code:: text

    render_scene(scene, size, rng)
      background: two tones split at the horizon, smooth lighting, grain
      paint(shape) for the clutter, then the objects (labelled)
      border_band(label) -> 255 (void), as VOC's object outlines
      pixel noise, rounding to uint8

Smooth noise is Pillow's bilinear resize of a coarse random grid; the void
band is Pillow's max/min rank filters. Everything else is numpy.
"""
from typing import Tuple

import numpy as np
from PIL import Image, ImageFilter

from .scene import Scene, Shape
from .shapes import shape_mask, texture_weight
from .voc_classes import VOID


def smooth_noise(rng: np.random.Generator, size: int,
                 cells: int) -> np.ndarray:
    """A ``(cells + 1)^2`` uniform random grid resized to ``size^2``.

    Args:
        rng (np.random.Generator): Draws the grid.
        size (int): Side of the output.
        cells (int): Grid cells across the output; larger is finer.

    Returns:
        np.ndarray: float32 ``(size, size)`` values in [0, 1].
    """
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    resized = Image.fromarray(grid).resize((size, size),
                                           Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def border_band(label: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` (Chebyshev) of a pixel of another label.

    A pixel is in the band when the ``(2 radius + 1)^2`` window around it
    holds more than one label, i.e. its max and min filters differ. The
    image border is no boundary (the filters repeat the edge pixels).

    Args:
        label (np.ndarray): uint8 label map, shape (H, W).
        radius (int): Half width of the band in pixels.

    Returns:
        np.ndarray: bool mask of shape (H, W).
    """
    img = Image.fromarray(label)
    size = 2 * radius + 1
    high = np.asarray(img.filter(ImageFilter.MaxFilter(size)))
    low = np.asarray(img.filter(ImageFilter.MinFilter(size)))
    return high != low


def paint(image: np.ndarray, label: np.ndarray, shape: Shape,
          rng: np.random.Generator) -> None:
    """Paint ``shape`` into ``image`` (and ``label`` unless it is clutter).

    The shape is evaluated in the window around its bounding circle, in
    its own frame (see :mod:`.shapes`), with a linear shading across it.

    Args:
        image (np.ndarray): float32 RGB image (H, W, 3), changed in place.
        label (np.ndarray): uint8 label map (H, W), changed in place.
        shape (Shape): What to paint and where.
        rng (np.random.Generator): Draws the random textures.
    """
    s = shape
    size = label.shape[0]
    radius = float(np.hypot(s.hw, s.hh)) + 1
    x0, x1 = max(0, int(s.cx - radius)), min(size, int(s.cx + radius) + 2)
    y0, y1 = max(0, int(s.cy - radius)), min(size, int(s.cy + radius) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1, dtype=np.float32)[None] - s.cx
    dy = np.arange(y0, y1, dtype=np.float32)[:, None] - s.cy
    c, n = float(np.cos(s.angle)), float(np.sin(s.angle))
    x, y = c * dx + n * dy, c * dy - n * dx
    if s.flip:
        x = -x
    u, v = x / s.hw, y / s.hh
    mask = shape_mask(s.shape, u, v)
    period = max(3.0, 2 * min(s.hw, s.hh) / s.cycles)
    w = texture_weight(s.texture, x, y, u, v, period, rng)[mask][:, None]
    shade = (1 + 0.12 * (u * c + v * n))[mask][:, None]
    window = image[y0:y1, x0:x1]
    window[mask] = (s.colour * (1 - w) + s.colour2 * w) * shade
    if s.label is not None:
        label[y0:y1, x0:x1][mask] = s.label


def render_scene(scene: Scene, size: int,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Paint one scene.

    Args:
        scene (Scene): The content, from :func:`.scene.compose_scene`.
        size (int): Side of the image in pixels.
        rng (np.random.Generator): Draws lighting, grain, textures, noise.

    Returns:
        tuple[np.ndarray, np.ndarray]: uint8 RGB image (size, size, 3) and
        uint8 label map (size, size) with VOC ids and a 255 band of
        ``max(1, round(size / 64))`` px on each side of every border.
    """
    rows = np.arange(size, dtype=np.float32)[:, None]
    mix = np.clip((rows - scene.horizon[None]) / 2 + 0.5, 0, 1)[..., None]
    light = 1 + 0.35 * (smooth_noise(rng, size, 4) - 0.5)
    grain = 40 * (smooth_noise(rng, size, size // 4) - 0.5)
    image = (scene.upper + (scene.lower - scene.upper) * mix) * \
        light[..., None] + grain[..., None] * mix
    label = np.zeros((size, size), np.uint8)
    for shape in scene.clutter + scene.objects:
        paint(image, label, shape, rng)
    label[border_band(label, max(1, round(size / 64)))] = VOID
    image += 32 * (rng.random(image.shape, dtype=np.float32) - 0.5)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label
