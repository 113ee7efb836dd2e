"""One visualizer per Runner."""
import uuid

from mmengine.config import Config


def unique_visualizer(cfg: Config) -> None:
    """Give the config's visualizer a name of its own: mmengine hands an
    existing instance of a name (mmseg's is 'visualizer') to every later
    Runner of the process, with the first one's ``save_dir``."""
    if isinstance(cfg.get('visualizer'), dict):
        cfg.visualizer['name'] = \
            f'{cfg.get("experiment_name", "run")}_{uuid.uuid4().hex[:12]}'
