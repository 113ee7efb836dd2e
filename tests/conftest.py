"""Shared fixtures: the embedded benchmark at test size."""
import os

import pytest
from mmseg.utils import register_all_modules

from mmseg_incremental.synthetic_voc import generate_benchmark

os.environ.setdefault('OMP_NUM_THREADS', '2')
# Build pipelines from mmseg's registries (LoadAnnotations is mmseg's).
register_all_modules(init_default_scope=True)


@pytest.fixture(scope='session')
def embedded_voc(tmp_path_factory):
    """A small embedded benchmark (VOC tree) shared by the test session."""
    root = str(tmp_path_factory.mktemp('embedded') / 'voc')
    generate_benchmark(root, num_train=400, num_val=120, image_size=32, seed=0)
    return root


@pytest.fixture(autouse=True)
def _presence_cache(tmp_path_factory, monkeypatch):
    """Keep the class-presence cache out of the user's home."""
    monkeypatch.setenv('MMSEG_INCREMENTAL_CACHE',
                       str(tmp_path_factory.getbasetemp() / 'presence'))
