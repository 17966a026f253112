/*
 * plugin.c - loading pass plugins: a shared object built against passes/passes.h that defines
 * `il_status il_plugin_init(int abi)` and registers its passes from it (docs/passes.md).
 * The handle is never closed: the registry keeps pointers into the plugin's data.
 */
#include "passes.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

il_status il_pass_load_plugin(const char *path) {
    if (!path || !*path) return il_error(IL_ERR_INVALID, "--plugin needs the path of a .so file");
    /* dlopen searches the library path for a bare name; a plugin is a file the user points at */
    char full[4096];
    snprintf(full, sizeof full, "%s%s", strchr(path, '/') ? "" : "./", path);
    void *h = dlopen(full, RTLD_NOW | RTLD_LOCAL);
    if (!h) return il_error(IL_ERR_IO, "cannot load plugin %s: %s", path, dlerror());
    il_status (*init)(int) = NULL;
    *(void **)&init = dlsym(h, "il_plugin_init");
    if (!init) {
        dlclose(h);
        return il_error(IL_ERR_INVALID, "plugin %s has no il_plugin_init function (see docs/passes.md)", path);
    }
    il_status st = init(IL_PASS_ABI);
    if (st) return il_error_wrap(st, "plugin %s: ", path);
    return IL_OK;
}
