# trainref.py - what the trainer's Python tests share: the offline transformers setup, the
# reference libraries (or the skip/fail of refenv), the failure list, reading a checkpoint.

import os
import sys

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error')

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'ref'))
import refenv  # noqa: E402

np, torch, transformers, safetensors_torch = refenv.need('numpy', 'torch', 'transformers', 'safetensors.torch')

import qkv_cli  # noqa: E402,F401

transformers.utils.logging.disable_progress_bar()

failures = []


def fail(msg):
    failures.append(msg)
    print('FAIL: ' + msg, flush=True)


def tensors(model_dir):
    """The tensors of model_dir/model.safetensors as float64 NumPy arrays, by name."""
    path = os.path.join(model_dir, 'model.safetensors')
    return {k: v.double().numpy() for k, v in safetensors_torch.load_file(path).items()}


def load_causal_lm(model_dir):
    """transformers' model of model_dir: CPU, float32, eager attention, eval mode."""
    m = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                          attn_implementation='eager', local_files_only=True)
    m.eval()
    return m


def finish():
    if failures:
        print('%d failure(s)' % len(failures))
        return 1
    return 0
