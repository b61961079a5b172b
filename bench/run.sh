#!/bin/sh
# bench/run.sh - the benchmarks whose figures the README quotes. Run from the project root
# after a release build (./dev bench does both). Models are written once under
# ${QKV_BENCH_DIR:-/tmp/qkv-bench} (about 1.3 GB). QKV_KERNELS=scalar|avx2|avx512|avx512vnni forces a
# kernel table; `qkv bench` says which ran. Each engine figure comes with the bound measured in
# the same run: generation as a fraction of the memory read bandwidth, prefill of sgemm.
set -eu
QKV=${QKV:-build/app/qkv}
DIR=${QKV_BENCH_DIR:-/tmp/qkv-bench}
mkdir -p "$DIR"
for dt in f32 f16 bf16; do
    m="$DIR/gpt2-124m-$dt"
    [ -f "$m/model.safetensors" ] ||
        $QKV -e "new-model gpt2 layers=12 heads=12 d=768 ctx=1024 vocab=50257 seed=1 dtype=$dt masks=false out=$m" >/dev/null
done
[ -f "$DIR/llama-124m/model.safetensors" ] ||
    $QKV -e "new-model llama layers=12 heads=12 kv_heads=4 d=768 ff=2048 ctx=1024 vocab=32000 seed=1 out=$DIR/llama-124m" >/dev/null
[ -f "$DIR/bert-base/model.safetensors" ] ||
    $QKV -e "new-model bert layers=12 heads=12 d=768 ff=3072 ctx=512 vocab=30522 seed=1 out=$DIR/bert-base" >/dev/null
# As llama-bench's pp512 and tg128 (how issue 7's llama.cpp figures were taken): prefill of 512
# tokens (with generation after them, where a token also reads the 512 positions' KV cache), then
# generation from an empty context.
echo "== engine: GPT-2 124M shape, 2 threads, qkv bench prompt=512 gen=128, then prompt=0 gen=128"
for dt in f32 f16 bf16; do
    $QKV --threads 2 --model "$DIR/gpt2-124m-$dt" --db "$DIR/bench.db" -e "bench prompt=512 gen=128 reps=3" \
        -e "bench prompt=0 gen=128 reps=3"
done
echo "== engine: the F32 model quantized in memory (every matrix, the tied embedding and head too), 2 threads"
$QKV --threads 2 --model "$DIR/gpt2-124m-f32" --db "$DIR/bench.db" -e "bench prompt=512 gen=128 reps=3" \
    -e "quantize q8_0 embed=true" -e "bench prompt=512 gen=128 reps=3" \
    -e "quantize q4_0 embed=true" -e "bench prompt=512 gen=128 reps=3" \
    -e "quantize q4_k embed=true" -e "bench prompt=512 gen=128 reps=3" \
    -e "quantize q4_k_m embed=true" -e "bench prompt=512 gen=128 reps=3"
echo "== engine: the same size as Llama (12 layers, d=768, 12 heads, 4 KV heads, vocabulary 32000) and BERT-base"
$QKV --threads 2 --model "$DIR/llama-124m" --db "$DIR/bench.db" -e "bench prompt=512 gen=128 reps=3" \
    -e "bench prompt=0 gen=128 reps=3"
$QKV --threads 2 --model "$DIR/bert-base" --db "$DIR/bench.db" -e "bench prompt=512 reps=3 embed=32"
if $QKV --model minilm -e model >/dev/null 2>&1; then
    echo "== all-MiniLM-L6-v2: sentence embeddings (32 tokens)"
    $QKV --threads 2 --model minilm --db "$DIR/bench.db" -e "bench prompt=512 reps=3 embed=32"
fi
echo "== training: the built-in teaching model (GPT-2, 4 layers, d=128), batches of 8 x 256 tokens, 2 threads"
$QKV --threads 2 --model data/models/teach --db "$DIR/bench.db" -e "bench-train batch=8 seq=256 steps=3 reps=5"
if [ -x build/tests/unit/kern_bench ]; then
    echo "== decoding kernels alone (GPT-2 124M's linear layers, 2 threads)"
    build/tests/unit/kern_bench 2 3
fi
if [ -x build/tests/db/db_bench ]; then
    echo "== database: bulk run logging"
    build/tests/db/db_bench 20000 1000 "$DIR"
fi
for b in build/tests/views/heatmap_bench build/app/tui_bench; do
    [ -x "$b" ] && { echo "== $(basename "$b")"; "$b"; }
done
exit 0
