#!/usr/bin/env bash
# One call on a GPU machine without network (DESIGN §6): bring the stack up
# from carried wheels, time every method on the paper's R101 (fp32 and bf16
# autocast), then run VOC 15-1 EF+L'_D (all six steps, a few iterations a
# class) through tools/train_incremental.py on a carried VOC-format folder at
# 321x321 crops, total batch 4.
#
#   here:  pip download ... -d .whl (README "GPU"), python tools/make_benchmark.py
#          data/gpu_voc --num-train 400 --num-val 100 --image-size 256
#   there: bash benchmarks/gpu_check.sh   (OUT= where results go)
set -euo pipefail
OUT=${OUT:-/tmp/gpu_check}
WHL=${WHL:-.whl}
DATA=${DATA:-data/gpu_voc}
SITE=/tmp/site
mkdir -p "$OUT"
start=$(date +%s)
stamp() { echo "[$(($(date +%s) - start)) s] $*" | tee -a "$OUT/timeline.txt"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
  > "$OUT/gpu.txt" 2>&1 || true
python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" \
  "$WHL"/*.whl
rm -rf /tmp/mmcv-2.1.0 && tar xzf "$WHL"/mmcv-2.1.0.tar.gz -C /tmp
# mmcv's ops for the CPU only: our models use none of its CUDA kernels.
(cd /tmp/mmcv-2.1.0 && PYTHONPATH="$SITE" CUDA_VISIBLE_DEVICES= \
  MMCV_WITH_OPS=1 MAX_JOBS=16 python3 setup.py build_ext --inplace \
  > /tmp/mmcv_build.log 2>&1) || { tail -30 /tmp/mmcv_build.log; exit 1; }
export PYTHONPATH=/tmp/mmcv-2.1.0:$SITE:$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, mmcv.ops, mmseg, mmseg_incremental; \
print('stack ok: torch', torch.__version__, torch.cuda.get_device_name())" \
  | tee -a "$OUT/timeline.txt"
stamp 'stack ready'

python3 benchmarks/bench_train_step.py --device cuda --iters 15 \
  --json "$OUT/bench_fp32.json" 2>&1 | tail -12 | tee -a "$OUT/timeline.txt"
stamp 'bench fp32 done'
python3 benchmarks/bench_train_step.py --device cuda --iters 15 --amp \
  --json "$OUT/bench_bf16.json" 2>&1 | tail -12 | tee -a "$OUT/timeline.txt"
stamp 'bench bf16 done'

python3 tools/train_incremental.py configs/il/voc_15-1_ef-ld.py \
  --work-dir /tmp/run/15-1_ef-ld --cfg-options iters_per_class=5 \
  data_root="$DATA" step0_store=/tmp/run/store \
  train_dataloader.dataset.ann_file=ImageSets/Segmentation/train.txt \
  train_dataloader.dataset.data_prefix.seg_map_path=SegmentationClass \
  train_dataloader.num_workers=4 val_dataloader.num_workers=4 \
  > "$OUT/run_15-1.log" 2>&1 || echo 'run failed' >> "$OUT/timeline.txt"
stamp '15-1 EF+LD run done'
cp /tmp/run/15-1_ef-ld/summary.json "$OUT/summary_15-1.json" 2>/dev/null || true
grep -E 'M_0 init|total_batch_size|FreezeEncoderHook|Experiment: step|Iter\(train\)' \
  "$OUT/run_15-1.log" | cut -c1-400 >> "$OUT/timeline.txt" || true
