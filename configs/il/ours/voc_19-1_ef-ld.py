# VOC 19-1, the ef-ld row in this plugin's flavour ("ours"): the common setup
# without the authors'-code knobs (grown classifier, full lr decay, L'_D at
# logit resolution, BN gamma/beta frozen, ImageNet input for torchvision's
# ResNet-101). The paper's row as the authors ran it:
# configs/il/voc_19-1_ef-ld.py.
_base_ = ['../../_base_/ilt_voc_deeplabv2.py', '../../_base_/methods/ef-ld.py']
task = '19-1'
