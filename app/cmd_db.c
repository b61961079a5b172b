// cmd_db.c - PLACEHOLDER until the db/ work lands.
#include "cmd.h"

const Command db_commands[] = {{NULL, NULL, 0, 0, NULL, NULL, NULL, false}};
