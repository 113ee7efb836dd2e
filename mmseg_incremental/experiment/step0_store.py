"""A store of trained M_0 models, shared by experiments.

Step 0 is by far the longest step (|S_0| · 1000 iterations: 20k for VOC
19-1) and it does not depend on the incremental method. An experiment
publishes its M_0 here under the hash of what decides it (model, step-0
data and schedule, seed: :func:`plan.step0_fingerprint_source`); another
experiment whose step 0 hashes the same reuses it instead of retraining.

Layout: ``<root>/<hash[:16]>/source.json`` (the exact fingerprinted dict)
and ``<root>/<hash[:16]>/M0.pth`` (weights only). A lookup re-reads
``source.json`` and reuses the entry only when it equals the asking
experiment's source exactly, so a hash collision or a hand-edited entry is
never served.
"""
import json
import os
import os.path as osp
import shutil
from typing import Optional

from mmengine.logging import print_log

from .plan import _plain, fingerprint


class Step0Store:
    """Find or publish M_0 checkpoints by the fingerprint of step 0.

    Args:
        root (str): The store's folder (created on first publish).
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def _entry(self, source: dict) -> str:
        return osp.join(self.root, fingerprint(source)[:16])

    def lookup(self, source: dict) -> Optional[str]:
        """The stored M_0 checkpoint for ``source``, or None."""
        entry = self._entry(source)
        ckpt = osp.join(entry, 'M0.pth')
        meta = osp.join(entry, 'source.json')
        if not (osp.isfile(ckpt) and osp.isfile(meta)):
            return None
        with open(meta) as f:
            stored = json.load(f)
        if stored != json.loads(json.dumps(_plain(source), default=repr)):
            print_log(
                f'Step-0 store entry {entry} has the same hash but a '
                'different config; not reusing it.',
                logger='current')
            return None
        return ckpt

    def publish(self, source: dict, checkpoint: str) -> str:
        """Copy ``checkpoint`` into the store; returns the stored path."""
        entry = self._entry(source)
        os.makedirs(entry, exist_ok=True)
        tmp = osp.join(entry, 'M0.pth.tmp')
        shutil.copyfile(checkpoint, tmp)
        with open(osp.join(entry, 'source.json'), 'w') as f:
            json.dump(_plain(source), f, indent=1, sort_keys=True,
                      default=repr)
        os.replace(tmp, osp.join(entry, 'M0.pth'))
        return osp.join(entry, 'M0.pth')
