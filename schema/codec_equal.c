/*
 * codec_equal.c - equality of schema records as the wire sees them (see
 * codec_equal.h), so tests and fuzzers can state "decode(encode(x)) == x".
 */
#include <string.h>

#include "codec_equal.h"

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool argv_eq(const char *const *a, uint32_t an, const char *const *b,
		    uint32_t bn)
{
	if (an != bn || !a != !b)
		return false;
	for (uint32_t i = 0; i < an; i++)
		if (!str_eq(a[i], b[i]))
			return false;
	return true;
}

bool weft_event_equal(const weft_event *a, const weft_event *b)
{
	if (a->kind != b->kind || a->pid != b->pid || a->tgid != b->tgid ||
	    a->ret != b->ret || a->fd != b->fd || a->fd2 != b->fd2 ||
	    a->flags != b->flags || a->mode != b->mode ||
	    a->created != b->created || a->time_ns != b->time_ns ||
	    a->has_stat != b->has_stat)
		return false;
	if (a->has_stat &&
	    (a->st_mode != b->st_mode || a->st_dev != b->st_dev ||
	     a->st_ino != b->st_ino || a->st_size != b->st_size ||
	     a->st_mtime_ns != b->st_mtime_ns))
		return false;
	return str_eq(a->path, b->path) && str_eq(a->path2, b->path2) &&
	       argv_eq(a->argv, a->argc, b->argv, b->argc);
}

static bool env_eq(const weft_process_rec *a, const weft_process_rec *b)
{
	if (a->env_state != b->env_state || a->nenv != b->nenv ||
	    !str_eq(a->env_missing, b->env_missing) ||
	    a->has_exe_hash != b->has_exe_hash ||
	    (a->has_exe_hash && memcmp(a->exe_hash, b->exe_hash, 32) != 0))
		return false;
	for (uint32_t i = 0; i < a->nenv; i++) {
		const weft_env_entry *x = &a->env[i], *y = &b->env[i];
		if (!str_eq(x->name, y->name) || !str_eq(x->value, y->value) ||
		    (!x->value && memcmp(x->hash, y->hash, 32) != 0))
			return false;
	}
	return true;
}

bool weft_process_rec_equal(const weft_process_rec *a,
			    const weft_process_rec *b)
{
	return env_eq(a, b) && a->pid == b->pid && a->ppid == b->ppid &&
	       a->exit_code == b->exit_code && a->exited == b->exited &&
	       a->has_index == b->has_index &&
	       (!a->has_index || a->index == b->index) &&
	       a->has_parent == b->has_parent &&
	       (!a->has_parent || a->parent == b->parent) &&
	       a->by_exec == b->by_exec && a->execd == b->execd &&
	       a->started_ns == b->started_ns && a->ended_ns == b->ended_ns &&
	       str_eq(a->exe, b->exe) && str_eq(a->cwd, b->cwd) &&
	       argv_eq((const char *const *)a->argv, a->argc,
		       (const char *const *)b->argv, b->argc);
}

bool weft_file_rec_equal(const weft_file_rec *a, const weft_file_rec *b)
{
	if (!str_eq(a->path, b->path) || a->read != b->read ||
	    a->written != b->written || a->created != b->created ||
	    a->deleted != b->deleted || !str_eq(a->renamed_to, b->renamed_to) ||
	    !str_eq(a->hash_missing, b->hash_missing) ||
	    a->has_size != b->has_size || a->has_hash != b->has_hash ||
	    a->has_first_stat != b->has_first_stat)
		return false;
	if (a->has_size && a->size != b->size)
		return false;
	if (a->has_hash && memcmp(a->hash, b->hash, sizeof(a->hash)) != 0)
		return false;
	if (a->has_first_stat &&
	    (a->first_dev != b->first_dev || a->first_ino != b->first_ino ||
	     a->first_size != b->first_size ||
	     a->first_mtime_ns != b->first_mtime_ns ||
	     a->first_ctime_ns != b->first_ctime_ns))
		return false;
	if (!str_eq(a->used_path, b->used_path) || a->updated != b->updated ||
	    a->has_read_hash != b->has_read_hash ||
	    !str_eq(a->read_hash_missing, b->read_hash_missing) ||
	    a->has_final_stat != b->has_final_stat ||
	    a->first_open_ns != b->first_open_ns ||
	    a->last_write_ns != b->last_write_ns ||
	    !str_eq(a->loc_fs, b->loc_fs) || !str_eq(a->loc_path, b->loc_path))
		return false;
	if (a->has_read_hash &&
	    memcmp(a->read_hash, b->read_hash, sizeof(a->read_hash)) != 0)
		return false;
	if (a->has_final_stat &&
	    (a->final_dev != b->final_dev || a->final_ino != b->final_ino ||
	     a->final_mtime_ns != b->final_mtime_ns ||
	     a->final_ctime_ns != b->final_ctime_ns))
		return false;
	if (a->ntouches != b->ntouches)
		return false;
	for (uint32_t i = 0; i < a->ntouches; i++) {
		const weft_file_touch *x = &a->touches[i], *y = &b->touches[i];
		if (x->proc != y->proc || x->flags != y->flags ||
		    ((x->flags & WEFT_TOUCH_SRC_RUN) && x->src != y->src) ||
		    x->first_open_ns != y->first_open_ns ||
		    x->last_write_ns != y->last_write_ns)
			return false;
	}
	return true;
}

bool weft_report_equal(const weft_report *a, const weft_report *b)
{
	if (strcmp(a->run_id, b->run_id) || strcmp(a->backend, b->backend) ||
	    strcmp(a->node, b->node) || a->exit_code != b->exit_code ||
	    a->started_ns != b->started_ns || a->ended_ns != b->ended_ns ||
	    a->nprocesses != b->nprocesses || a->nfiles != b->nfiles ||
	    a->nwarnings != b->nwarnings ||
	    a->dropped_events != b->dropped_events)
		return false;
	for (size_t i = 0; i < a->nprocesses; i++)
		if (!weft_process_rec_equal(&a->processes[i], &b->processes[i]))
			return false;
	for (size_t i = 0; i < a->nfiles; i++)
		if (!weft_file_rec_equal(&a->files[i], &b->files[i]))
			return false;
	for (size_t i = 0; i < a->nwarnings; i++)
		if (!str_eq(a->warnings[i], b->warnings[i]))
			return false;
	return true;
}
