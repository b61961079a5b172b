#!/usr/bin/env python3
# test_torch_grads.py - suite 'reference': the trainer's loss and the gradient of every
# parameter equal PyTorch autograd's on the same weights and batch.
#
# For random-weight models that `qkv new-model` writes (GPT-2 tied; Llama with grouped-query
# heads, tied and untied; Qwen2 with q/k/v biases), tests/train/train_grad runs the trainer's
# forward and backward on a batch of B sequences (one target not counted) and writes the
# gradients in the model's own layout; transformers loads the same directory (float32, eager
# attention), computes the mean cross-entropy of the same batch and backpropagates.
#   - loss: |d| <= TOL_LOSS
#   - every parameter's gradient: max |d| <= TOL_GRAD * max(1e-3, max |torch grad|)
# With 1 and 2 threads. Skips (77) without the test environment unless QKV_REQUIRE_REFS=1.
# Usage: test_torch_grads.py QKV_BINARY TRAIN_GRAD_BINARY

import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'ref'))
import refenv  # noqa: E402

np, torch, transformers, safetensors_torch = refenv.need('numpy', 'torch', 'transformers', 'safetensors.torch')

import qkv_cli  # noqa: E402

transformers.utils.logging.disable_progress_bar()

TOL_LOSS = 2e-6
TOL_GRAD = 1e-5
STD = 0.2

VARIANTS = [
    ('gpt2', 'gpt2', 'layers=2 heads=4 d=32 ctx=32 seed=51'),
    ('llama-gqa', 'llama', 'layers=2 heads=4 kv_heads=2 d=32 ff=48 ctx=32 seed=52'),
    ('llama-untied', 'llama', 'layers=2 heads=2 d=32 ctx=32 seed=53 tied=false'),
    ('qwen2-bias', 'qwen2', 'layers=2 heads=4 kv_heads=1 d=32 ctx=32 seed=54 tied=false'),
]

failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def torch_grads(model_dir, inputs, targets):
    m = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                          attn_implementation='eager', local_files_only=True)
    m.eval()  # no dropout (qkv's trainer has none); autograd runs all the same
    logits = m(input_ids=torch.tensor(inputs)).logits
    t = torch.tensor(targets)
    t = torch.where(t < 0, torch.full_like(t, -100), t)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1), ignore_index=-100)
    loss.backward()
    grads = {}
    for name, p in m.named_parameters():
        grads[name] = p.grad.detach().double().numpy()
    return loss.item(), grads


def file_name(hf_name, family):
    """The name a parameter of transformers' model has in the checkpoint's layout."""
    if family == 'gpt2' and hf_name.startswith('transformer.'):
        return hf_name[len('transformer.'):]
    return hf_name


def run_variant(name, family, opts, qkv, tgrad, tmp, rng):
    model_dir = os.path.join(tmp, name)
    db = os.path.join(tmp, 'qkv.db')
    p = qkv_cli.new_model(qkv, [family] + opts.split() + ['std=%g' % STD, 'out=' + model_dir], db)
    if p.returncode != 0:
        fail('%s: new-model: %s' % (name, p.stderr.strip()))
        return
    with open(os.path.join(model_dir, 'config.json')) as f:
        V = json.load(f)['vocab_size']
    B, T = 3, 11
    inputs = rng.integers(0, V, size=(B, T)).tolist()
    targets = rng.integers(0, V, size=(B, T)).tolist()
    targets[1][4] = -1
    want_loss, want = torch_grads(model_dir, inputs, targets)
    for threads in (1, 2):
        out = os.path.join(tmp, name + '-grads-%d' % threads)
        ids = ','.join(str(i) for row in inputs + targets for i in row)
        r = subprocess.run([tgrad, model_dir, out, str(B), str(T), str(threads), ids], capture_output=True, text=True)
        if r.returncode != 0:
            fail('%s: train_grad: exit %d: %s' % (name, r.returncode, r.stderr.strip()))
            continue
        got_loss = json.loads(r.stdout)['loss']
        tag = '%s (%d threads)' % (name, threads)
        if not abs(got_loss - want_loss) <= TOL_LOSS:
            fail('%s: loss expected %.9g, got %.9g' % (tag, want_loss, got_loss))
        got = {k: v.double().numpy() for k, v in safetensors_torch.load_file(os.path.join(out, 'model.safetensors')).items()}
        worst = 0.0
        for hf_name, g in want.items():
            fname = file_name(hf_name, family)
            if fname not in got:
                fail('%s: no gradient for %s (file names: %s)' % (tag, fname, sorted(got)[:6]))
                continue
            mine = got[fname]
            if mine.shape != g.shape:
                fail('%s: %s: shape expected %s, got %s' % (tag, fname, g.shape, mine.shape))
                continue
            scale = max(1e-3, float(np.max(np.abs(g))))
            d = np.abs(mine - g)
            i = np.unravel_index(int(np.argmax(d)), d.shape)
            err = float(d[i]) / scale
            worst = max(worst, err)
            if not err <= TOL_GRAD:
                fail('%s: gradient of %s: max err %.3g (relative to %.3g) > %g at %s: torch %.8g, qkv %.8g'
                     % (tag, fname, err, scale, TOL_GRAD, i, g[i], mine[i]))
        extra = set(got) - {file_name(k, family) for k in want}
        if extra:
            fail('%s: gradients of tensors torch does not have: %s' % (tag, sorted(extra)))
        print('ok %-28s loss %.7f (torch %.7f), %d tensors, worst relative gradient error %.2e'
              % (tag, got_loss, want_loss, len(want), worst), flush=True)


def main():
    qkv, tgrad = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        for name, family, opts in VARIANTS:
            run_variant(name, family, opts, qkv, tgrad, tmp, rng)
    if failures:
        print('%d failure(s)' % len(failures))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
