// models.h - the installed pretrained models: $XDG_DATA_HOME/qkv/models/NAME/ (else
// ~/.local/share/qkv/models/NAME/), put there by `./dev models` from PyPI packages, opened by
// name (`load minilm`, `--model minilm`), and the built-in teaching model.
#pragma once
#include <stdbool.h>

// The folder of installed models (xmalloc'd), or NULL when neither XDG_DATA_HOME nor HOME is set.
char *models_dir(void);
// The path of the installed model called name (xmalloc'd), or NULL when name is not a plain
// name (it holds a '/' or is a path that exists) or no such model is installed.
char *models_find(const char *name);

// The built-in teaching model (README: The teaching model), trained by qkv and shipped in
// data/models/teach: its name, and its folder (xmalloc'd; $QKV_TEACH_MODEL when set, "" for
// none), or NULL when it is not there. An installed model of the same name wins in models_find.
#define TEACH_MODEL "teach"
char *models_teach_dir(void);
