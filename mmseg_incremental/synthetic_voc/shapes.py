"""Shape families and textures, as functions of box coordinates.

Both work on the pixels of a window around one object, expressed in the
object's own frame: ``(x, y)`` are pixel offsets along the object's axes
and ``(u, v)`` the same scaled so that the shape's box is ``[-1, 1]^2``
(``v`` grows downwards). Being analytic, they rotate and scale for free.
"""
import numpy as np


def _shape_parts(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The composite shape families (several parts each)."""
    au, av = np.abs(u), np.abs(v)
    if shape == 'quadruped':
        body = ((u + 0.1) / 0.75)**2 + ((v + 0.15) / 0.45)**2 <= 1
        head = ((u - 0.72) / 0.28)**2 + ((v + 0.5) / 0.3)**2 <= 1
        leg_x = np.minimum(np.abs(u + 0.55), np.abs(u - 0.3)) <= 0.1
        legs = leg_x & (v >= 0.1) & (v <= 1)
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
        panel = (au <= 1) & (v >= -1) & (v <= 0.75)
        neck = (au <= 0.15) & (v > 0.75) & (v <= 0.9)
        foot = (au <= 0.5) & (v > 0.9) & (v <= 1)
        return panel | neck | foot
    if shape == 'person':
        head = (u / 0.5)**2 + ((v + 0.75) / 0.25)**2 <= 1
        body = (u / 0.85)**2 + ((v - 0.25) / 0.75)**2 <= 1
        return head | body
    raise ValueError(f'Unknown shape family {shape!r}.')


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Which pixels belong to the shape.

    Args:
        shape (str): Shape family: ``'ellipse'``, ``'rect'``,
            ``'diamond'``, ``'triangle'``, ``'bottle'`` or one of the
            composite families (quadruped, plane, two_rings, motorbike,
            boat, car, lshape, table, plant, screen, person).
        u (np.ndarray): Horizontal box coordinate, shape (H, W).
        v (np.ndarray): Vertical box coordinate, shape (H, W).

    Returns:
        np.ndarray: bool mask of shape (H, W).
    """
    au, av = np.abs(u), np.abs(v)
    if shape == 'ellipse':
        return u * u + v * v <= 1
    if shape == 'rect':
        return (au <= 1) & (av <= 1)
    if shape == 'diamond':
        return au + av <= 1
    if shape == 'triangle':
        return (v <= 1) & (au <= (v + 1) / 2)
    if shape == 'bottle':
        return (au <= 1) & (av <= 1) & ((v >= -0.3) | (au <= 0.4))
    return _shape_parts(shape, u, v)


def texture_weight(texture: str, x: np.ndarray, y: np.ndarray, u: np.ndarray,
                   v: np.ndarray, period: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Weight of the second colour at each pixel.

    Args:
        texture (str): ``'flat'``, ``'gradient'``, ``'stripes_h'``,
            ``'stripes_v'``, ``'checker'``, ``'dots'``, ``'wool'``,
            ``'noise'``, ``'screen'``, ``'person'`` or ``'plant'``.
        x (np.ndarray): Pixel offset along the object's width, (H, W).
        y (np.ndarray): Pixel offset along the object's height, (H, W).
        u (np.ndarray): ``x`` in box coordinates, (H, W).
        v (np.ndarray): ``y`` in box coordinates, (H, W).
        period (float): Texture period in pixels.
        rng (np.random.Generator): Draws the random textures.

    Returns:
        np.ndarray: Weights in [0, 1], shape (H, W).
    """
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
    if texture in ('wool', 'noise'):
        amount = 0.45 if texture == 'wool' else 0.7
        return rng.random(x.shape, dtype=np.float32) * amount
    if texture == 'screen':
        inner = (np.abs(u) <= 0.8) & (v >= -0.8) & (v <= 0.55)
        return inner * (0.7 + 0.3 * np.clip(-v, 0, 1))
    if texture == 'person':
        return v <= -0.48
    if texture == 'plant':
        return v >= 0.35
    raise ValueError(f'Unknown texture {texture!r}.')
