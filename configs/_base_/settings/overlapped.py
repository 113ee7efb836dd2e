# MiB --overlap / PLOP: images of any classes; old and future pixels become
# background; unseen classes count as background in evaluation (PLOP).
setting = 'overlapped'
eval_protocol = 'unseen_as_background'
