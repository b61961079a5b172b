// models.c - finding installed models by name.
#include "models.h"

#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "base/mem.h"

char *models_dir(void) {
    const char *data = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (data && *data) return fs_join(data, "qkv/models");
    if (home && *home) return fs_join(home, ".local/share/qkv/models");
    return NULL;
}

char *models_find(const char *name) {
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") || fs_is_dir(name) ||
        fs_is_file(name))
        return NULL;
    char *dir = models_dir();
    if (!dir) return NULL;
    char *p = fs_join(dir, name);
    free(dir);
    if (fs_is_dir(p)) return p;
    free(p);
    return strcmp(name, TEACH_MODEL) ? NULL : models_teach_dir();
}

char *models_teach_dir(void) {
    const char *env = getenv("QKV_TEACH_MODEL");
    if (env) return *env && fs_is_dir(env) ? xstrdup(env) : NULL;
#ifdef QKV_MODELS_SOURCE
    if (fs_is_dir(QKV_MODELS_SOURCE "/" TEACH_MODEL)) return xstrdup(QKV_MODELS_SOURCE "/" TEACH_MODEL);
#endif
#ifdef QKV_MODELS_INSTALLED
    if (fs_is_dir(QKV_MODELS_INSTALLED "/" TEACH_MODEL)) return xstrdup(QKV_MODELS_INSTALLED "/" TEACH_MODEL);
#endif
    return NULL;
}
