/*
 * store_int.h - shared by the store's own files (store.c opens and writes, store_check.c says
 * what a file is); not a public interface.
 */
#ifndef IL_STORE_INT_H
#define IL_STORE_INT_H

#include <sqlite3.h>

#include "bench.h"

/* What the file at path (open as db) holds, read before anything writes: *version 0 for a
 * fresh file (no schema objects, no version), else its inferlab schema version. Refused: not
 * SQLite; not inferlab's (other tables, no or an invalid version, inferlab's tables missing or
 * replaced by views, a results view that is not the one inferlab wrote, triggers); newer than
 * this build. migrations[k] is the SQL taking version k to k+1 (the expected results view is
 * read from it). *rc gets SQLite's code of a failed read (a WAL file on a read-only filesystem
 * fails here with SQLITE_CANTOPEN). */
il_status sto_classify(sqlite3 *db, const char *path, const char *const *migrations, int *version, int *rc);
/* SQLite's quick_check on files up to 1 GB: damaged pages are an error, not missing rows. */
il_status sto_check_pages(sqlite3 *db, const char *path);

#endif
