# PLOP (Douillard et al., CVPR 2021): Local POD on the four backbone
# stages, the decoder's output and the logits, plus entropy-based
# pseudo-labelling of the background with PLOP's adaptive factor on the
# cross-entropy, background-initialised new classifier rows (as MiB).
# Source: arthurdouillard/CVPR2021_PLOP argparser.py, --method PLOP:
# pod = 'local', pod_factor = 0.01, pod_logits = True, pod_options =
# {'switch': {'after': {'extra_channels': 'sum', 'factor': 0.0005,
# 'type': 'local'}}} (the logits' factor), spp_scales default [1, 2, 4],
# pseudo = 'entropy', threshold = 0.001, classif_adaptive_factor = True,
# init_balanced = True; --pseudo_nb_bins default None -> 100 bins for
# entropies (train.py, find_median); --no_pod_schedule off: POD scaled by
# sqrt(|S_k| / |U_k|) (PODLoss.forward's num_classes / num_new_classes).
# PLOP keeps the plain cross-entropy (no unce) on the pseudo-labelled
# targets. PLOP evaluates unseen classes as background (dataset/voc.py:
# masking value 0 for the test set too): the leaves set eval_protocol =
# 'unseen_as_background' in both settings. The thresholds and the
# relabelling: mmseg_incremental/models/utils/pseudo_label.py; the terms:
# mmseg_incremental/models/terms/plop.py.
# On ADE20K PLOP's scripts use pod_factor 0.001 and 0.00001 for the logits
# (configs/il/plop/ade_*.py).
# POD reads each stage's output before its last activation, as PLOP's
# ResNet hands them to POD (modules/residual.py l.125-138 returns (act, x),
# models/resnet.py l.126-139, segmentation_module.py l.311):
# pod_inputs='pre_relu'; 'post_relu' reads the backbone's outputs after
# mmseg's ReLU instead.
_base_ = ['./ft.py']
method = 'PLOP'
incremental = dict(
    distill_terms=dict(
        pod=dict(
            type='LocalPODTerm',
            loss_weight=0.01,
            last_layer_weight=0.0005,
            scales=(1, 2, 4),
            pod_inputs='pre_relu'),
        pseudo_label=dict(
            type='PseudoLabelTerm',
            criterion='entropy',
            threshold=0.001,
            num_bins=100,
            median_rule='plop',
            adaptive_factor=True)),
    new_class_init='background')
