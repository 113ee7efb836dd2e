#!/usr/bin/env bash
# One call on a GPU machine without network (docs/design.md §6): bring the stack up
# from carried wheels, then, most important first and each stage bounded by
# what is left of DEADLINE seconds: the speed ladder of FT / L'_D / EF+L'_D
# on the paper's R101 (4 x 321²) with every switch on (bf16, NHWC, cuDNN
# benchmark, CUDA-graphed encoders; graphed vs eager check, host syncs per
# step against mmseg's loss_by_feat, profile), the fp32 default-settings
# baseline, VOC 15-1 EF+L'_D end to end (six steps, a few iterations a
# class, per-step phase timing, batched validation) through
# tools/train_incremental.py on a carried VOC-format folder, every method
# with all switches, DDP (one process) with all switches, one-image
# validation, the remaining ladder rungs, and an eager 15-1 run.
#
#   here:  pip download ... -d .whl (docs/gpu.md), python tools/make_benchmark.py
#          data/gpu_voc --num-train 400 --num-val 100 --image-size 256
#   there: OUT=<results> bash benchmarks/gpu_check.sh  (DEADLINE=470 s default)
#          (results: $OUT/timeline.txt, bench_*.json, timing_*.json)
set -euo pipefail
OUT=${OUT:-/tmp/gpu_check}
WHL=${WHL:-.whl}
DATA=${DATA:-data/gpu_voc}
SITE=/tmp/site
mkdir -p "$OUT"
# The device tool brings back only a few files: pack everything into one
# archive on exit (a failed or bounded stage included), keep the timeline.
pack() {
  (cd "$OUT" && tar czf /tmp/gpu_check_results.tgz --exclude=results.tgz . \
    && find . -mindepth 1 ! -name timeline.txt -delete \
    && mv /tmp/gpu_check_results.tgz results.tgz) || true
}
trap pack EXIT
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

# Every stage is bounded by what is left of DEADLINE seconds (the device
# call's limit), most important first, so a slow stage costs only itself.
DEADLINE=${DEADLINE:-470}  # the issue: the whole check within 8 minutes
left() { echo $((DEADLINE - ($(date +%s) - start))); }
bounded() {  # bounded <seconds> <command...>: skipped when too little is left
  local limit=$1 rest; shift
  rest=$(( $(left) - 5 ))
  (( rest < 20 )) && { stamp "skipped (time): $*" ; return 0; }
  (( limit > rest )) && limit=$rest
  timeout "$limit" "$@" || echo "failed or timed out (rc $?): $*" >> "$OUT/timeline.txt"
}
bench() {  # bench <name> <seconds> <flags...>
  local name=$1 limit=$2; shift 2
  bounded "$limit" python3 benchmarks/bench_train_step.py --device cuda \
    --iters 15 --json "$OUT/bench_$name.json" "$@" > "$OUT/bench_$name.log" 2>&1
  grep -vE 'Warning|warn|^ *$' "$OUT/bench_$name.log" | tail -18 \
    >> "$OUT/timeline.txt" || true
  stamp "bench $name done"
}
# VOC 15-1 EF+L'_D end to end (6 steps) as a user runs it; per-step timing
# (build, set-up, first iteration, iterations, validation) from step_done.json.
# A name starting with "ddp" runs under torchrun (one process, --launcher
# pytorch: DDP-wrapped, NCCL).
run15() {  # run15 <name> <seconds> <extra cfg-options...>
  local name=$1 limit=$2 launch=(python3) launcher=(); shift 2
  if [[ $name == ddp* ]]; then
    launch=(python3 -m torch.distributed.run --nproc_per_node=1 --master_port=29517)
    launcher=(--launcher pytorch)
  fi
  bounded "$limit" "${launch[@]}" tools/train_incremental.py \
    configs/il/voc_15-1_ef-ld.py "${launcher[@]}" \
    --work-dir /tmp/run/$name --cfg-options iters_per_class=5 \
    data_root="$DATA" step0_store=/tmp/run/store_$name \
    train_dataloader.dataset.ann_file=ImageSets/Segmentation/train.txt \
    train_dataloader.dataset.data_prefix.seg_map_path=SegmentationClass \
    train_dataloader.num_workers=4 val_dataloader.num_workers=4 "$@" \
    > "$OUT/run_$name.log" 2>&1
  stamp "15-1 EF+L'_D run $name done"
  cp /tmp/run/$name/summary.json "$OUT/summary_$name.json" 2>/dev/null || true
  python3 - "$name" "$OUT" <<'PY' >> "$OUT/timeline.txt" || true
import glob, json, sys
name, out = sys.argv[1:]
rows = {}
for path in sorted(glob.glob(f'/tmp/run/{name}/step_*/step_done.json')):
    done = json.load(open(path))
    rows[done['step']] = done.get('timing')
json.dump(rows, open(f'{out}/timing_{name}.json', 'w'), indent=1)
for step, t in sorted(rows.items()):
    print(name, 'step', step, json.dumps(t))
PY
  grep -E 'timing|cuda_graph|channels_last|M_0 init|total_batch_size|Error' \
    "$OUT/run_$name.log" | cut -c1-300 >> "$OUT/timeline.txt" || true
}
LADDER=(--methods FT "L'_D" "EF+L'_D")
FAST=(--cudnn-benchmark --channels-last --amp --cuda-graph)
# 1. everything on, with the graph-vs-eager check, host syncs per step,
#    the same methods with mmseg's own loss_by_feat (its 3 syncs) in the
#    same rounds, and a profile
bench bf16_nhwc_graph 110 "${LADDER[@]}" "${FAST[@]}" --mmseg-loss \
  --graph-check --profile "$OUT/profile_fast"
# 2. the issue's baseline: fp32, default cuDNN settings
bench fp32 60 "${LADDER[@]}"
# 3. the pipeline's per-step overhead and batched validation, fast settings
run15 fast 150 amp=bf16 channels_last=True cuda_graph=True val_batch_size=8
# 4. every method, everything on (docs/gpu.md table)
bench all_fast 90 "${FAST[@]}"
# 5. DDP (one process) with every switch, two steps; validation one image
#    at a time (against 3); the rest of the ladder
run15 ddp_fast 100 amp=bf16 channels_last=True cuda_graph=True \
  val_batch_size=8 max_step=1
run15 fast_val1 120 amp=bf16 channels_last=True cuda_graph=True
bench bf16_nhwc 50 "${LADDER[@]}" --cudnn-benchmark --channels-last --amp
bench fp32_profile 40 --methods FT "EF+L'_D" --iters 5 --profile "$OUT/profile_fp32"
run15 eager 150
stamp 'all done'
