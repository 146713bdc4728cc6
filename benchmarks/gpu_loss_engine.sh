#!/usr/bin/env bash
# The loss engine on one CUDA GPU, in one run of about 10 minutes (the steps' time limits add
# up to 575 s): the CUDA tests of the Triton kernels and the attention backends, the tiled
# engine against the dense form on CUDA, benchmarks/loss_speed_gpu_check.py (the kernels'
# check and timings), benchmarks/loss_speed.py --device cuda (manyview tiled and dense against
# the peers; D = 256, N = 4096, 16384, 32768) and mv_infonce with 1,048,576 rows.
#
#   bash benchmarks/gpu_loss_engine.sh      (from the repository root; OUT=DIR to choose)
#
# It writes under $OUT (default /tmp/gpu_out): log.txt (versions, the GPU, every step's
# output and exit status), kernel_check.txt, loss_speed.txt, loss_speed_cuda.json and
# loss_speed_cuda.png. A failing step does not stop the others.
#
# Wheels the machine lacks go in .whl/ (ignored by git): they are installed with --no-deps
# into /tmp/site. The peers (lightly, pytorch-metric-learning, open_clip) come from
# .whl/peers.tar.gz, made from the project's environment with
#   tar czf .whl/peers.tar.gz -C .venv/lib/python3.11/site-packages lightly \
#     pytorch_metric_learning open_clip ftfy wcwidth timm huggingface_hub httpx2 httpcore2 h11 \
#     anyio idna truststore filelock fsspec regex
# and are optional: loss_speed.py leaves out a peer that does not import.
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT" /tmp/site
for wheel in .whl/*.whl; do  # one at a time: a wheel for another platform is skipped
    [ -e "$wheel" ] && python -m pip install -q --no-deps --target /tmp/site "$wheel" >>"$OUT/log.txt" 2>&1
done
# .whl/peers.tar.gz: the peers' pure-python packages (lightly, pytorch_metric_learning,
# open_clip and what their loss modules import) from the project's venv (Python 3.11); last
# on the path, so the machine's own packages win where it has them.
mkdir -p /tmp/peers
[ -e .whl/peers.tar.gz ] && tar xzf .whl/peers.tar.gz -C /tmp/peers
export PYTHONPATH=/tmp/site:$PWD/core:$PWD/modalities/manyview-speech/src:$PWD/modalities/manyview-text/src:$PWD/modalities/manyview-vision/src:/tmp/peers
python -c "import sys; print(sys.version)" >>"$OUT/log.txt" 2>&1
python -c "import lightly.loss, pytorch_metric_learning.losses, open_clip.loss; print('peers import')" >>"$OUT/log.txt" 2>&1
export MANYVIEW_DISABLE_PLUGINS=${MANYVIEW_DISABLE_PLUGINS:-}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >>"$OUT/log.txt" 2>&1

step() {  # step NAME SECONDS COMMAND...: run with a time limit, output to $OUT/log.txt
    local name=$1 limit=$2 file="$OUT/log.txt"
    shift 2
    case $name in kernel_check | loss_speed) file="$OUT/$name.txt" ;; esac
    echo "== $name ($(date +%T))" | tee -a "$OUT/log.txt"
    timeout "$limit" "$@" >>"$file" 2>&1
    echo "   $name: exit $?" | tee -a "$OUT/log.txt"
}

step cuda_tests 120 python -m pytest -q -x -p no:cacheprovider -m "cuda" \
    tests/core/losses/engine/test_triton_kernels.py tests/core/test_attention.py
step tiled_engine_cuda 45 python - <<'EOF'
import torch, manyview
from manyview.losses.engine import default_triton_backend
torch.backends.cuda.matmul.allow_tf32 = False
g = torch.Generator().manual_seed(0)
for name in ("infonce", "mv_infonce", "clip", "supcon", "mv_dhel", "dcl", "isogclr"):
    extra = {"num_samples": 3000} if name == "isogclr" else {}
    dense = manyview.create("loss", name, engine="dense", **extra)
    tile = manyview.create("loss", name, engine="tiled", **extra)
    views, kw = dense.example_inputs(3000, None, 96, generator=g)
    kw = {k: v.cuda() for k, v in kw.items()}
    x1 = views.cuda().requires_grad_()
    x2 = views.cuda().requires_grad_()
    v1 = dense.cuda()(x1, **kw); v1.backward()
    v2 = tile.cuda()(x2, **kw); v2.backward()
    rel = float((v2 - v1).abs().detach() / v1.abs().detach())
    grel = float((x2.grad - x1.grad).norm() / x1.grad.norm())
    print(f"{name}: value rel {rel:.2e}, grad rel {grel:.2e}, triton failures {default_triton_backend().failures}")
EOF
step kernel_check 150 python benchmarks/loss_speed_gpu_check.py
step loss_speed 200 python benchmarks/loss_speed.py --device cuda --families infonce clip \
    mv_infonce --dims 256 --sizes 4096 16384 32768 --memory-sizes 16384 --repeats 10 \
    --json "$OUT/loss_speed_cuda.json" --plot "$OUT/loss_speed_cuda.png"
step million_rows 60 python - <<'EOF'
import time, torch, manyview
torch.backends.cuda.matmul.allow_tf32 = True
n, m, d = 262144, 4, 128  # N * M = 1,048,576 rows
loss = manyview.create("loss", "mv_infonce", temperature=0.1, engine="tiled")
x = torch.randn(n, m, d, device="cuda", requires_grad=True)
torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
base = torch.cuda.memory_allocated()
start = time.perf_counter()
loss(x).backward()
torch.cuda.synchronize()
print(f"mv_infonce N={n} M={m} D={d}: {time.perf_counter() - start:.2f} s forward+backward, "
      f"peak {(torch.cuda.max_memory_allocated() - base) / 2**30:.2f} GiB above the inputs")
EOF
echo "done $(date +%T)" >>"$OUT/log.txt"
