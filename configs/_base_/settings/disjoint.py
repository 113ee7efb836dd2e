# MiB's disjoint setting: old-class pixels of new images become background;
# unseen classes are ignored in evaluation (MiB).
setting = 'disjoint'
eval_protocol = 'mask_unseen'
