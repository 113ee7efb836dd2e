"""Methods as registered terms on IncrementalEncoderDecoder: the same
losses and gradients as the first version's keys, the declarations that
planning and deployment read, and one clear error per bad combination."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from mmseg.registry import MODELS
from mmseg_incremental.models.segmentors import model_declarations
from mmseg_incremental.models.segmentors.distill_encoder_decoder import \
    legacy_terms
from mmseg_incremental.models.terms import DistillTerm
from mmseg_incremental.planning.deploy import deploy_config
from test_models.utils import distill_cfg, make_batch, make_teacher

LD = dict(type='OutputDistillLoss', variant='ilt', pixel_mask='old')
POD = dict(type='PODLoss', loss_weight=0.01, last_layer_weight=0.0005)
#: name -> (the first version's keys, the same method as terms)
METHODS = {
    "L'_D+L''_D":
    (dict(
        distill_output=LD,
        distill_feature=dict(type='FeatureDistillLoss', loss_weight=50.0)),
     dict(
         distill_terms=dict(
             output=dict(
                 type='OutputDistillTerm', variant='ilt', pixel_mask='old'),
             feature=dict(type='FeatureDistillTerm', loss_weight=50.0)))),
    "EF+L'_D":
    (dict(freeze_encoder=True, distill_output=LD),
     dict(
         freeze_encoder=True,
         distill_terms=dict(
             output=dict(
                 type='OutputDistillTerm', variant='ilt', pixel_mask='old')))),
    'MiB': (dict(
        decode_loss=dict(type='UnbiasedCrossEntropyLoss'),
        distill_output=dict(type='UnbiasedDistillLoss', loss_weight=10.0),
        new_class_init='background'),
            dict(
                distill_terms=dict(
                    unbiased_ce=dict(type='UnbiasedCETerm'),
                    unbiased_kd=dict(type='UnbiasedKDTerm', loss_weight=10.0)),
                new_class_init='background')),
    'PLOP': (dict(
        head='FCNHead',
        distill_pod=POD,
        pseudo_label=dict(type='entropy', threshold=0.5),
        new_class_init='background'),
             dict(
                 head='FCNHead',
                 distill_terms=dict(
                     pod=dict(
                         type='LocalPODTerm',
                         loss_weight=0.01,
                         last_layer_weight=0.0005),
                     pseudo_label=dict(type='PseudoLabelTerm', threshold=0.5)),
                 new_class_init='background')),
}


def _step(path, kwargs, new_type):
    """Losses and gradients of two training iterations on one batch."""
    kwargs = copy.deepcopy(kwargs)
    head = kwargs.get('head', 'DeepLabV2Head')
    torch.manual_seed(3)
    cfg = distill_cfg(path, 6, **kwargs)
    if new_type:
        cfg['type'] = 'IncrementalEncoderDecoder'
    model = MODELS.build(cfg)
    assert type(model).__name__ == cfg['type'] and head
    model.init_weights()
    model.train()
    data = model.data_preprocessor(make_batch(6), True)
    for term in model.distill_terms.values():
        if hasattr(term, 'fit_thresholds'):
            term.fit_thresholds(model,
                                [(data['inputs'], data['data_samples'])])
    out = []
    for _ in range(2):
        losses = model.loss(data['inputs'], data['data_samples'])
        total = sum(v for k, v in losses.items() if 'loss' in k)
        model.zero_grad()
        total.backward()
        out.append((list(losses), [v.detach() for v in losses.values()], {
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        }))
    return out


@pytest.mark.parametrize('method', list(METHODS))
def test_terms_equal_the_first_versions_keys(tmp_path, method):
    legacy, terms = METHODS[method]
    path = str(tmp_path / 'teacher.pth')
    make_teacher(path, 4, head=legacy.get('head', 'DeepLabV2Head'))
    old = _step(path, legacy, new_type=False)
    new = _step(path, terms, new_type=True)
    for (keys_a, values_a, grads_a), (keys_b, values_b,
                                      grads_b) in zip(old, new):
        assert keys_a == keys_b  # same names, same order (summed alike)
        for a, b in zip(values_a, values_b):
            assert torch.equal(a, b)
        assert grads_a.keys() == grads_b.keys() and grads_a
        for key in grads_a:
            assert torch.equal(grads_a[key], grads_b[key]), key
    assert any(
        float(v) > 0 for k, v in zip(old[0][0], old[0][1])
        if k.startswith('distill.') or 'unbiased' in k or 'pseudo' in k)


def test_legacy_keys_become_terms_in_the_old_order():
    terms = legacy_terms(
        distill_output=dict(type='UnbiasedDistillLoss', alpha=2.0),
        distill_feature=dict(loss_weight=3.0),
        decode_loss=dict(type='UnbiasedCrossEntropyLoss'),
        pseudo_label=dict(type='entropy', num_bins=7))
    assert list(terms) == ['decode_loss', 'pseudo_label', 'output', 'feature']
    assert terms['output'] == dict(type='UnbiasedKDTerm', alpha=2.0)
    assert terms['feature'] == dict(
        type='FeatureDistillTerm',
        loss_type='FeatureDistillLoss',
        loss_weight=3.0)
    assert terms['pseudo_label'] == dict(
        type='PseudoLabelTerm',
        criterion='entropy',
        threshold=0.001,
        num_bins=7,
        median_rule='plop',
        adaptive_factor=True)


ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _fragment_model(name):
    """The step-k model keys of a shipped method fragment."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'methods', f'{name}.py'))
    return dict(cfg.incremental)


@pytest.mark.parametrize('name,hooks,num_seen', [
    ('ft', (), False),
    ('ld', (), False),
    ('ef-ld', ('FreezeEncoderHook', ), False),
    ('ld-fd', (), False),
    ('mib', (), False),
    ('plop', ('PseudoLabelHook', ), True),
])
def test_declarations_of_the_shipped_fragments(name, hooks, num_seen):
    model = _fragment_model(name)
    declared = model_declarations(model)
    assert declared.model_type == 'IncrementalEncoderDecoder'
    assert declared.training_hooks == hooks
    assert declared.needs_num_seen_classes is num_seen
    assert 'distill_terms' in declared.training_only_keys
    # ld-fd composes two fragments: both terms, L'_D first.
    if name == 'ld-fd':
        assert list(declared.terms) == ['output', 'feature']


def test_legacy_declarations_choose_the_alias():
    declared = model_declarations(
        dict(freeze_encoder=True, pseudo_label=dict(type='entropy')))
    assert declared.model_type == 'DistillEncoderDecoder'
    assert declared.training_hooks == ('FreezeEncoderHook', 'PseudoLabelHook')
    assert 'pseudo_label' in declared.training_only_keys


def test_deploy_drops_what_the_declarations_name():
    cfg = Config(
        dict(
            model=dict(
                type='IncrementalEncoderDecoder',
                backbone=dict(type='ResNetV1c', init_cfg=dict(x=1)),
                teacher_checkpoint='m.pth',
                freeze_encoder=True,
                distill_terms=dict(
                    pseudo=dict(type='PseudoLabelTerm'),
                    output=dict(type='OutputDistillTerm')),
                num_old_classes=3),
            custom_hooks=[
                dict(type='FreezeEncoderHook'),
                dict(type='PseudoLabelHook'),
                dict(type='ValCudnnBenchmarkHook')
            ],
            load_from='x.pth'))
    deploy = deploy_config(cfg)
    assert deploy.model.to_dict() == dict(
        type='EncoderDecoder',
        backbone=dict(type='ResNetV1c'),
        pretrained=None)
    assert [h['type']
            for h in deploy.custom_hooks] == ['ValCudnnBenchmarkHook']
    assert deploy.load_from is None


@MODELS.register_module(force=True)
class _TermWithWeights(DistillTerm):

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(distill_terms=dict(x=dict(type='OutputDistillLoss'))), TypeError,
     'does not name a registered DistillTerm'),
    (dict(distill_terms=dict(x=dict(type='_TermWithWeights'))), ValueError,
     'holds parameters or buffers'),
    (dict(
        distill_terms=dict(
            a=dict(type='PseudoLabelTerm'), b=dict(type='PseudoLabelTerm'))),
     ValueError, 'all replace the decode loss'),
    (dict(
        teacher_cache=dict(),
        distill_terms=dict(
            a=dict(type='OutputDistillTerm'),
            b=dict(type='FeatureDistillTerm'))), ValueError,
     "teacher_cache replays the teacher's logits"),
    (dict(
        freeze_encoder=True,
        distill_terms=dict(b=dict(type='FeatureDistillTerm'))), ValueError,
     'meaningless'),
])
def test_bad_terms_are_refused(tmp_path, kwargs, error, match):
    path = str(tmp_path / 'teacher.pth')
    make_teacher(path, 4)
    cfg = distill_cfg(path, 6, **kwargs)
    cfg['type'] = 'IncrementalEncoderDecoder'
    with pytest.raises(error, match=match):
        MODELS.build(cfg)


def test_alias_refuses_a_term_named_twice(tmp_path):
    path = str(tmp_path / 'teacher.pth')
    make_teacher(path, 4)
    cfg = distill_cfg(
        path,
        6,
        distill_output=LD,
        distill_terms=dict(output=dict(type='OutputDistillTerm')))
    with pytest.raises(ValueError, match="move .* into distill_terms"):
        MODELS.build(cfg)


def test_a_none_entry_drops_an_inherited_term(tmp_path):
    path = str(tmp_path / 'teacher.pth')
    make_teacher(path, 4)
    cfg = distill_cfg(
        path,
        6,
        distill_terms=dict(
            output=None,
            feature=dict(type='FeatureDistillTerm', loss_weight=2.0)))
    cfg['type'] = 'IncrementalEncoderDecoder'
    model = MODELS.build(cfg)
    assert list(model.distill_terms) == ['feature']
    data = model.data_preprocessor(make_batch(6), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert [k for k in losses
            if k.startswith('distill.')] == ['distill.loss_distill_feat']


def test_a_misspelt_term_argument_is_an_error_when_planned():
    from mmseg_incremental.models.segmentors import check_terms
    check_terms(_fragment_model('plop'))  # the shipped ones pass
    model = _fragment_model('ld')
    model['distill_terms']['output']['loss_weigth'] = 2.0
    with pytest.raises(TypeError, match='distill_terms.output .*loss_weigth'):
        check_terms(model)
    model = _fragment_model('mib')
    model['distill_terms']['unbiased_kd']['resolution'] = 'pixels'
    with pytest.raises(ValueError, match='distill_terms.unbiased_kd'):
        check_terms(model)
