// appdb.h - the App's side of the data store: opening the database on first use, the
// ranking that waits between `rank` and `order`, and closing both at exit.
#pragma once
#include <stdbool.h>

#include "app.h"
#include "db.h"

// The database of app, opened (and created or migrated) on first use from app->db_path,
// else QKV_DB, else $XDG_DATA_HOME/qkv/qkv.db. NULL with e filled when it cannot be used;
// the next call tries again.
Db *app_db(App *app, Err *e);
// True while a ranking started with `rank` waits for `order` or `skip` (the TUI asks
// before quitting).
bool app_rank_pending(const App *app);
// Drop a pending ranking (nothing is stored: a ranking is stored whole or not at all),
// warning on stderr when there was one, and close the database. For app_done.
void app_db_done(App *app);
