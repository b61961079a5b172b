// commands.h - every command qkv has (one table per area, in cmd_*.c) and running one
// command line against the session: what a person types in the REPL is exactly what runs
// headless and behind the TUI.
#pragma once
#include <stddef.h>

#include "lang.h"
#include "session.h"

extern const Command model_commands[];   // cmd_model.c: model, load, tokenize, new-model
extern const Command gen_commands[];     // cmd_gen.c: logits, generate, bench
extern const Command inspect_commands[]; // cmd_inspect.c: attention, pe, save
extern const Command analysis_commands[]; // cmd_analysis.c: heads, lens, patch
extern const Command probe_commands[];    // cmd_probe.c: probe, layersim
extern const Command encode_commands[];  // cmd_encode.c: fill, embed, similarity
extern const Command quant_commands[];   // cmd_quant.c: quantize, compare
extern const Command data_commands[];    // cmd_data.c: history, show, replay, rankings, export
extern const Command exp_commands[];     // cmd_exp.c: tasks, prompt, experiment, experiments
extern const Command rank_commands[];    // cmd_rank.c: rank, order, skip, note
extern const Command session_commands[]; // cmd_session.c: set, help, quit
extern const Command train_commands[];   // cmd_train.c: train
extern const Command agree_commands[];   // cmd_agree.c: agreement
extern const Command reward_commands[];  // cmd_reward.c: reward train, reward score
extern const Command dpo_commands[];     // cmd_dpo.c: dpo train

// cmd_quant.c: `export gguf FILE [type=f32|f16|q8_0]` (export dispatches by its first word).
int export_gguf(App *app, const Args *a, Out *out);

// Register every table with the command language (once; later calls do nothing).
void commands_init(void);
// Run one command line: parse, check arity and options, open the built-in model for a
// command that needs one and has none, dispatch. The result is in out (out->err on
// failure). Returns 0 or -1.
int commands_run(App *app, const char *line, size_t len, Out *out);
