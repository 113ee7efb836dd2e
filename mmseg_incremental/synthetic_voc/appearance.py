"""How each foreground class looks: shape family, colours and texture.

Every class has its own appearance. Four pairs are alike on purpose and
differ in one cue only (:data:`LOOKALIKES`), so that forgetting an old class
shows as confusion with a new one, as cow/sheep and chair/sofa do in VOC.
"""
from dataclasses import dataclass
from typing import Dict, Tuple

from .voc_classes import PERSON

Colour = Tuple[int, int, int]


@dataclass(frozen=True)
class Appearance:
    """How the instances of one class look.

    Args:
        shape (str): Shape family (see :func:`.shapes.shape_mask`).
        aspect (float): Width / height of the shape's box.
        colour (tuple[int]): Main RGB colour.
        colour2 (tuple[int]): Second RGB colour the texture mixes in.
        texture (str): Texture (see :func:`.shapes.texture_weight`).
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
#: The appearance of every foreground class but person, by VOC id.
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
#: The person's appearance; its colour is replaced by one of the clothes.
PERSON_APPEARANCE = Appearance('person', 0.45, (200, 40, 40),
                               (230, 180, 140), 'person')
# yapf: enable

#: Pairs of classes that differ in a single cue (docs/design.md §7).
LOOKALIKES: Tuple[Tuple[int, int, str], ...] = (
    (10, 17, 'texture: spots (cow) vs wool (sheep)'),
    (9, 18, 'aspect: tall (chair) vs wide (sofa)'),
    (8, 12, 'colour: orange (cat) vs brown (dog)'),
    (6, 19, 'cycles: wide (bus) vs narrow (train) stripes'),
)

#: Shapes and textures of background clutter (never labelled).
CLUTTER_SHAPES: Tuple[str, ...] = ('ellipse', 'rect', 'triangle', 'diamond')
CLUTTER_TEXTURES: Tuple[str, ...] = ('flat', 'noise', 'stripes_h', 'stripes_v',
                                     'checker', 'dots')


def appearance_of(cls: int) -> Appearance:
    """The appearance of VOC class ``cls`` (1..20)."""
    if cls in APPEARANCES:
        return APPEARANCES[cls]
    if cls == PERSON:
        return PERSON_APPEARANCE
    raise KeyError(f'Class {cls} has no appearance; use a VOC id in 1..20.')
