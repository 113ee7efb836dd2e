"""What planning and deployment read off a step's model config: the
segmentor class's and its terms' declarations (no hand-kept lists)."""
import difflib
import inspect
from typing import List, Mapping, Set, Tuple

from mmseg.registry import MODELS
from ..terms.base import term_class
from .distill_encoder_decoder import LEGACY_TERM_KEYS
from .incremental_encoder_decoder import IncrementalEncoderDecoder


class ModelDeclarations:
    """The declarations of an incremental model config.

    Args:
        model_cfg (Mapping): A step's ``model`` (type
            ``IncrementalEncoderDecoder``, a subclass, or
            ``DistillEncoderDecoder`` with the old keys; with no type or a
            type that is not incremental, the type is chosen from the keys).
    """

    def __init__(self, model_cfg: Mapping) -> None:
        kind = model_cfg.get('type')
        cls = MODELS.get(kind) if isinstance(kind, str) else kind
        if not (isinstance(cls, type)
                and issubclass(cls, IncrementalEncoderDecoder)):
            legacy = any(
                model_cfg.get(k) is not None for k in LEGACY_TERM_KEYS)
            cls = MODELS.get('DistillEncoderDecoder'
                             if legacy else 'IncrementalEncoderDecoder')
        self.segmentor = cls
        self.terms = cls.term_configs(model_cfg)
        self.term_classes = {
            name: term_class(cfg)
            for name, cfg in self.terms.items()
        }
        self.training_hooks: Tuple[str, ...] = cls.training_hooks(model_cfg)

    @property
    def model_type(self) -> str:
        """The registered name of the segmentor class."""
        return self.segmentor.__name__

    @property
    def training_only_keys(self) -> Tuple[str, ...]:
        """The model keys a plain ``EncoderDecoder`` lacks."""
        return tuple(self.segmentor.TRAINING_ONLY_KEYS)

    @property
    def needs_num_seen_classes(self) -> bool:
        """Whether a term needs |S_k| (passed with a fixed classifier)."""
        return any(c.needs_num_seen_classes
                   for c in self.term_classes.values())

    def resolution_terms(self, model_cfg: Mapping) -> List[dict]:
        """The term configs inside ``model_cfg`` (editable in place) whose
        terms take a ``resolution`` (the ``distill_resolution`` setting);
        for the old keys, ``distill_output`` itself."""
        out = []
        terms = model_cfg.get('distill_terms') or {}
        items = terms.items() if isinstance(terms,
                                            Mapping) else enumerate(terms)
        for _, cfg in items:
            if cfg is not None and term_class(cfg).has_resolution:
                out.append(cfg)
        if model_cfg.get('distill_output') is not None:
            out.append(model_cfg['distill_output'])
        return out


def model_declarations(model_cfg: Mapping) -> ModelDeclarations:
    """:class:`ModelDeclarations` of ``model_cfg``."""
    return ModelDeclarations(model_cfg)


def constructor_arguments(cls: type) -> Set[str]:
    """The keyword arguments ``cls(...)`` accepts: its ``__init__``'s, and
    its bases' as long as each passes ``**kwargs`` on."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        if '__init__' not in vars(klass) or klass is object:
            continue
        params = inspect.signature(vars(klass)['__init__']).parameters
        names.update(
            n for n, p in params.items() if n != 'self' and p.kind in (
                p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return names


def check_model(model_cfg: Mapping) -> None:
    """Check a step's incremental model config before anything trains: every
    key is an argument of its segmentor class (``freeze_encodr``: "did you
    mean freeze_encoder?") and every term builds (:func:`check_terms`).

    Raises:
        TypeError: An unknown segmentor argument, or a term's.
        ValueError: A value a term or the segmentor refuses.
    """
    declared = model_declarations(model_cfg)
    accepted = constructor_arguments(declared.segmentor)
    for key in model_cfg:
        if key == 'type' or key in accepted:
            continue
        close = difflib.get_close_matches(key, sorted(accepted), n=1)
        hint = f'; did you mean {close[0]}?' if close else (
            f'; it takes {", ".join(sorted(accepted))}')
        raise TypeError(f'incremental.{key} is not an argument of '
                        f'{declared.model_type}{hint}')
    check_terms(model_cfg)


def check_terms(model_cfg: Mapping) -> None:
    """Build every term of ``model_cfg`` alone, so that a misspelt or bad
    argument (``loss_weigth=2``, ``variant='x'``) is an error when a step
    is planned -- before step 0 trains -- and names the term."""
    for name, cfg in model_declarations(model_cfg).terms.items():
        try:
            MODELS.build(dict(cfg))
        except (TypeError, ValueError, KeyError) as error:
            raise type(error)(
                f'distill_terms.{name} ({cfg.get("type")}): {error}') \
                from error
