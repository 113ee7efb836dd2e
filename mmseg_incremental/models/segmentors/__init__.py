from .declarations import (ModelDeclarations, check_terms, model_declarations)
from .distill_encoder_decoder import DistillEncoderDecoder
from .incremental_encoder_decoder import IncrementalEncoderDecoder

__all__ = [
    'IncrementalEncoderDecoder', 'DistillEncoderDecoder', 'ModelDeclarations',
    'model_declarations', 'check_terms'
]
