"""Batches of equally sized images for whole-image evaluation."""
from typing import Dict, Iterator, List, Tuple

from PIL import Image
from torch.utils.data import BatchSampler, Sampler

from mmseg.registry import DATA_SAMPLERS

#: EXIF orientations that rotate by 90 degrees (width and height swap).
_TRANSPOSING = (5, 6, 7, 8)


def image_shape(path: str) -> Tuple[int, int]:
    """(height, width) of the image file at ``path`` as decoded (EXIF
    rotation applied), read from its header only."""
    with Image.open(path) as img:
        width, height = img.size
        orientation = img.getexif().get(0x0112)
    if orientation in _TRANSPOSING:
        width, height = height, width
    return height, width


@DATA_SAMPLERS.register_module()
class SameShapeBatchSampler(BatchSampler):
    """Batches of up to ``batch_size`` images of one shape.

    Validation runs on whole images (``test_cfg.mode='whole'``) of many
    shapes, so mmseg evaluates one image at a time: its data preprocessor
    refuses a test batch of mixed sizes, and padding them to one size would
    change the network's output near the borders. This sampler groups the
    indices of ``sampler`` by the image's shape (read from the file header
    once, ``img_path`` of the dataset's data info) and yields each group
    in batches, so each image is predicted exactly as alone (BatchNorm is
    in eval mode) while the GPU gets several at once. Every index of
    ``sampler`` is yielded exactly once: a batch is yielded when it is full,
    the partial ones after the sampler's last index, in the order their
    first image came.

    The test pipeline must map equal input shapes to equal output shapes
    (mmseg's loading, ``Resize`` and ``PackSegInputs`` do).

    Args:
        sampler (Sampler): The index sampler (mmengine's ``DefaultSampler``,
            one rank's share under DDP); its ``dataset`` gives the paths.
        batch_size (int): Images per batch at most.
        drop_last (bool): Must be False: evaluation needs every image.
    """

    def __init__(self,
                 sampler: Sampler,
                 batch_size: int,
                 drop_last: bool = False) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError('SameShapeBatchSampler needs a positive int '
                             f'batch_size; got {batch_size!r}.')
        if drop_last:
            raise ValueError('SameShapeBatchSampler evaluates every image; '
                             'remove drop_last=True.')
        if getattr(sampler, 'dataset', None) is None:
            raise ValueError('SameShapeBatchSampler reads image paths from '
                             "sampler.dataset; use mmengine's DefaultSampler.")
        super().__init__(sampler, batch_size, drop_last=False)
        self._shapes: Dict[int, Tuple[int, int]] = {}

    def shape(self, index: int) -> Tuple[int, int]:
        """The (height, width) of the dataset's image ``index`` (cached)."""
        if index not in self._shapes:
            info = self.sampler.dataset.get_data_info(index)
            self._shapes[index] = image_shape(info['img_path'])
        return self._shapes[index]

    def __iter__(self) -> Iterator[List[int]]:
        buckets: Dict[Tuple[int, int], List[int]] = {}
        for index in self.sampler:
            bucket = buckets.setdefault(self.shape(index), [])
            bucket.append(index)
            if len(bucket) == self.batch_size:
                yield list(bucket)
                bucket.clear()
        for bucket in buckets.values():
            if bucket:
                yield bucket

    def __len__(self) -> int:
        counts: Dict[Tuple[int, int], int] = {}
        for index in self.sampler:
            shape = self.shape(index)
            counts[shape] = counts.get(shape, 0) + 1
        return sum(-(-n // self.batch_size) for n in counts.values())
