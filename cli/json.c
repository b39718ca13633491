/*
 * json.c - the stable JSON documents weft prints (run report, preflight,
 * DAG). Strings and times are written the way the store's exports write
 * them (store/json_out.c), so that every document escapes paths alike.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "cli.h"

size_t json_utf8_len(const unsigned char *s, size_t avail)
{
	return weft_utf8_len(s, avail);
}

void json_string_or_null(FILE *out, const char *s)
{
	if (s)
		weft_json_string(out, s);
	else
		fputs("null", out);
}

void json_key_string(FILE *out, const char *key, const char *s)
{
	fprintf(out, ", \"%s\": ", key);
	json_string_or_null(out, s);
}

void json_object_open(FILE *out, const char *lead, const char *key,
		      const char *s)
{
	fprintf(out, "%s{\"%s\": ", lead, key);
	weft_json_string(out, s);
}

void json_strings(FILE *out, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputs(", ", out);
		weft_json_string(out, v[i]);
	}
}

static void json_bool(FILE *out, const char *key, bool v)
{
	fprintf(out, "\"%s\": %s", key, v ? "true" : "false");
}

void json_hash_or_null(FILE *out, bool has, const uint8_t hash[32])
{
	if (!has) {
		fputs("null", out);
		return;
	}
	char text[WEFT_HASH_TEXT_BYTES];
	weft_hash_to_text(hash, text);
	fprintf(out, "\"%s\"", text);
}

/* Schema 4: the executable's hash and the environment; absent for older
 * records. */
void json_process_deps(FILE *out, const weft_process_rec *p)
{
	static const char *const states[] = {NULL, "listed", "parent",
					     "unknown"};
	if (p->env_state == WEFT_ENV_NONE && !p->has_exe_hash)
		return;
	fputs(", \"exe_hash\": ", out);
	json_hash_or_null(out, p->has_exe_hash, p->exe_hash);
	fputs(", \"env_state\": ", out);
	if (p->env_state == WEFT_ENV_NONE || p->env_state > WEFT_ENV_UNKNOWN)
		fputs("null", out);
	else
		fprintf(out, "\"%s\"", states[p->env_state]);
	if (p->env_state == WEFT_ENV_LISTED) {
		fputs(", \"env\": {", out);
		for (uint32_t i = 0; i < p->nenv; i++) {
			const weft_env_entry *e = &p->env[i];
			if (i)
				fputs(", ", out);
			weft_json_string(out, e->name);
			if (e->value) {
				fputs(": {\"value\": ", out);
				weft_json_string(out, e->value);
			} else {
				fputs(": {\"hash\": ", out);
				json_hash_or_null(out, true, e->hash);
			}
			fputc('}', out);
		}
		fputc('}', out);
	}
	if (p->env_missing) {
		json_key_string(out, "env_missing", p->env_missing);
	}
}

static void json_process(FILE *out, const weft_process_rec *p)
{
	fprintf(out, "{\"pid\": %d, \"ppid\": %d, \"argv\": [", p->pid,
		p->ppid);
	json_strings(out, p->argv, p->argc);
	fputs("], \"exe\": ", out);
	json_string_or_null(out, p->exe);
	json_key_string(out, "cwd", p->cwd);
	if (p->exited)
		fprintf(out, ", \"exit_code\": %d", p->exit_code);
	else
		fputs(", \"exit_code\": null", out);
	/* Process images (schema 3): absent for older records. */
	if (p->has_index) {
		fprintf(out, ", \"index\": %u, \"parent\": ", p->index);
		if (p->has_parent)
			fprintf(out, "%u", p->parent);
		else
			fputs("null", out);
		fprintf(out, ", \"by_exec\": %s, \"execd\": %s",
			p->by_exec ? "true" : "false",
			p->execd ? "true" : "false");
	}
	json_process_deps(out, p);
	fputc('}', out);
}

/* What each process did to a file and which version it saw. */
static void json_touches(FILE *out, const weft_file_rec *f)
{
	static const struct {
		uint32_t flag;
		const char *name;
	} did[] = {
		{WEFT_TOUCH_READ, "read"},       {WEFT_TOUCH_WRITTEN, "written"},
		{WEFT_TOUCH_CREATED, "created"}, {WEFT_TOUCH_DELETED, "deleted"},
		{WEFT_TOUCH_RENAMED, "renamed"}, {WEFT_TOUCH_UPDATED, "updated"},
	};
	fputs(", \"processes\": [", out);
	for (uint32_t i = 0; i < f->ntouches; i++) {
		const weft_file_touch *t = &f->touches[i];
		fprintf(out, "%s{\"process\": %u, \"did\": [", i ? ", " : "",
			t->proc);
		bool first = true;
		for (size_t k = 0; k < sizeof(did) / sizeof(did[0]); k++)
			if (t->flags & did[k].flag) {
				fprintf(out, "%s\"%s\"", first ? "" : ", ",
					did[k].name);
				first = false;
			}
		fputs("], \"source\": ", out);
		if (t->flags & WEFT_TOUCH_SRC_RUN)
			fprintf(out, "%u", t->src);
		else if (t->flags & WEFT_TOUCH_SRC_UNKNOWN)
			fputs("\"unknown\"", out);
		else if (t->flags & (WEFT_TOUCH_READ | WEFT_TOUCH_UPDATED |
				     WEFT_TOUCH_RENAMED))
			fputs("\"found\"", out);
		else
			fputs("null", out);
		fprintf(out, ", \"weak\": %s, \"final\": %s}",
			(t->flags & WEFT_TOUCH_WEAK) ? "true" : "false",
			(t->flags & WEFT_TOUCH_FINAL) ? "true" : "false");
	}
	fputc(']', out);
}

/* ", \"location\": {fs, path}" or null (a record older than locations). */
static void json_location(FILE *out, const char *fs, const char *path)
{
	fputs(", \"location\": ", out);
	if (fs) {
		fputs("{\"fs\": ", out);
		weft_json_string(out, fs);
		json_key_string(out, "path", path);
		fputc('}', out);
	} else {
		fputs("null", out);
	}
}

static void json_file(FILE *out, const weft_file_rec *f)
{
	fputs("{\"path\": ", out);
	weft_json_string(out, f->path);
	fputs(", ", out);
	json_bool(out, "read", f->read);
	fputs(", ", out);
	json_bool(out, "written", f->written);
	fputs(", ", out);
	json_bool(out, "created", f->created);
	fputs(", ", out);
	json_bool(out, "deleted", f->deleted);
	json_key_string(out, "renamed_to", f->renamed_to);
	if (f->has_size)
		fprintf(out, ", \"size\": %lld", (long long)f->size);
	else
		fputs(", \"size\": null", out);
	if (f->has_hash) {
		char text[WEFT_HASH_TEXT_BYTES];
		weft_hash_to_text(f->hash, text);
		fprintf(out, ", \"hash\": \"%s\"", text);
	} else {
		fputs(", \"hash\": null, \"hash_missing\": ", out);
		json_string_or_null(out, f->hash_missing);
	}
	/* The version model (DESIGN.md "Store and DAG"): added fields. */
	json_key_string(out, "used_path", f->used_path);
	fputs(", ", out);
	json_bool(out, "updated", f->updated);
	if (f->has_read_hash) {
		char text[WEFT_HASH_TEXT_BYTES];
		weft_hash_to_text(f->read_hash, text);
		fprintf(out, ", \"read_hash\": \"%s\"", text);
	} else if (f->read || f->updated) {
		fputs(", \"read_hash\": null, \"read_hash_missing\": ", out);
		json_string_or_null(out, f->read_hash_missing);
	}
	json_location(out, f->loc_fs, f->loc_path);
	if (f->ntouches)
		json_touches(out, f);
	fputc('}', out);
}

void json_parts(FILE *out, uint32_t stored, uint32_t expected)
{
	if (expected)
		fprintf(out,
			", \"parts_stored\": %u, \"parts_expected\": %u, "
			"\"complete\": %s",
			stored, expected, stored < expected ? "false" : "true");
	else
		fputs(", \"parts_stored\": null, \"parts_expected\": null, "
		      "\"complete\": true",
		      out);
}

void text_parts(FILE *out, uint32_t stored, uint32_t expected)
{
	if (stored < expected)
		fprintf(out, ", INCOMPLETE: %u of %u parts stored", stored,
			expected);
}

void text_hash(FILE *out, const uint8_t hash[32], int width)
{
	char text[WEFT_HASH_TEXT_BYTES];
	weft_hash_to_text(hash, text);
	fprintf(out, "  %.*s", width, text);
}

void text_weak(FILE *out, bool write)
{
	fputs(write ? "  (weak: written, not hashed)"
		    : "  (weak: version not known, by location and time)",
	      out);
}

void json_report(FILE *out, const weft_report *r)
{
	char started[40], ended[40];
	weft_rfc3339(r->started_ns, started);
	weft_rfc3339(r->ended_ns, ended);
	fputs("{\"weft\": 1, \"run\": ", out);
	weft_json_string(out, r->run_id);
	json_key_string(out, "backend", r->backend);
	json_key_string(out, "node", r->node);
	fprintf(out,
		", \"exit_code\": %d, \"started\": \"%s\", \"ended\": \"%s\",\n"
		" \"processes\": [",
		r->exit_code, started, ended);
	for (size_t i = 0; i < r->nprocesses; i++) {
		fputs(i ? ",\n  " : "\n  ", out);
		json_process(out, &r->processes[i]);
	}
	fputs("],\n \"files\": [", out);
	for (size_t i = 0; i < r->nfiles; i++) {
		fputs(i ? ",\n  " : "\n  ", out);
		json_file(out, &r->files[i]);
	}
	fputs("],\n \"warnings\": [", out);
	json_strings(out, r->warnings, r->nwarnings);
	fprintf(out, "], \"dropped_events\": %llu",
		(unsigned long long)r->dropped_events);
	/* Only for a task with parts missing: a whole run's JSON stays the
	 * report `weft run --report` wrote, byte for byte. */
	if (r->parts_stored < r->parts_expected)
		json_parts(out, r->parts_stored, r->parts_expected);
	fputs("}\n", out);
}

void json_preflight(FILE *out, const weft_preflight *p)
{
	fputs("{\"backend\": ", out);
	weft_json_string(out, p->backend);
	fprintf(out, ", \"ok\": %s, \"summary\": ", p->ok ? "true" : "false");
	weft_json_string(out, p->summary);
	fputs(", \"command_checked\": ", out);
	json_string_or_null(out, p->command_checked[0] ? p->command_checked
						       : NULL);
	fputs(", \"checks\": [", out);
	for (size_t i = 0; i < p->nchecks; i++) {
		const weft_check *c = &p->checks[i];
		json_object_open(out, i ? ", " : "", "name", c->name);
		fprintf(out, ", \"ok\": %s, \"detail\": ",
			c->ok ? "true" : "false");
		weft_json_string(out, c->detail);
		fputc('}', out);
	}
	fputs("], \"warnings\": [", out);
	for (size_t i = 0; i < p->nwarnings; i++) {
		if (i)
			fputs(", ", out);
		weft_json_string(out, p->warnings[i]);
	}
	fputs("]}", out);
}

void json_preflight_auto(FILE *out, const weft_preflight *results, size_t n,
			 int selected, const char *summary,
			 const char *command)
{
	fprintf(out, "{\"backend\": \"auto\", \"ok\": %s, "
		     "\"selected_backend\": ",
		selected >= 0 ? "true" : "false");
	json_string_or_null(out, selected >= 0 ? results[selected].backend
					       : NULL);
	json_key_string(out, "summary", summary);
	json_key_string(out, "command_checked", command);
	fputs(", \"results\": [", out);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputs(", ", out);
		json_preflight(out, &results[i]);
	}
	fputs("]}", out);
}

void json_dag(FILE *out, const weft_dag *d)
{
	fputs("{\"weft\": 1, \"job\": ", out);
	json_string_or_null(out, d->job);
	fputs(",\n \"tasks\": [", out);
	for (size_t i = 0; i < d->ntasks; i++) {
		const weft_dag_task *t = &d->tasks[i];
		json_object_open(out, i ? ",\n  " : "\n  ", "id", t->id);
		json_key_string(out, "name", t->name);
		json_key_string(out, "node", t->node);
		json_key_string(out, "backend", t->backend);
		if (t->kind == WEFT_DAG_PROCESS && !t->exited)
			fputs(", \"exit_code\": null, \"parent\": ", out);
		else
			fprintf(out, ", \"exit_code\": %d, \"parent\": ",
				t->exit_code);
		json_string_or_null(out, t->parent);
		json_parts(out, t->parts_stored, t->nparts);
		fprintf(out, ", \"kind\": \"%s\"",
			t->kind == WEFT_DAG_PROCESS ? "process" : "run");
		if (t->kind == WEFT_DAG_PROCESS) {
			fprintf(out, ", \"pid\": %d, \"argv\": [", t->pid);
			json_strings(out, t->argv, t->argc);
			fputs("], \"exe\": ", out);
			json_string_or_null(out, t->exe);
			json_key_string(out, "started_by", t->started_by);
			fprintf(out, ", \"by_exec\": %s",
				t->by_exec ? "true" : "false");
		}
		fputc('}', out);
	}
	fputs("],\n \"artifacts\": [", out);
	for (size_t i = 0; i < d->nartifacts; i++) {
		const weft_dag_artifact *a = &d->artifacts[i];
		json_object_open(out, i ? ",\n  " : "\n  ", "id", a->id);
		json_key_string(out, "path", a->path);
		fputs(", \"hash\": ", out);
		json_hash_or_null(out, a->has_hash, a->hash);
		static const char *const kinds[] = {"written", "source",
						    "unknown", "intermediate"};
		fprintf(out,
			", \"version\": \"%s\", \"size\": ", kinds[a->kind]);
		if (a->has_size)
			fprintf(out, "%lld", (long long)a->size);
		else
			fputs("null", out);
		json_location(out, a->loc_fs, a->loc_path);
		fputc('}', out);
	}
	fputs("],\n \"edges\": [", out);
	for (size_t i = 0; i < d->nedges; i++) {
		const weft_dag_edge *e = &d->edges[i];
		json_object_open(out, i ? ",\n  " : "\n  ", "from", e->from);
		json_key_string(out, "to", e->to);
		fprintf(out, ", \"kind\": \"%s\", \"weak\": %s",
			e->write ? "write" : "read", e->weak ? "true" : "false");
		if (e->update)
			fputs(", \"update\": true", out);
		if (e->path) {
			json_key_string(out, "path", e->path);
		}
		fputc('}', out);
	}
	fputs("],\n \"same_content\": [", out);
	for (size_t i = 0; i < d->nsame; i++) {
		json_object_open(out, i ? ",\n  " : "\n  ", "artifact",
				 d->same[i].artifact);
		json_key_string(out, "same_as", d->same[i].same_as);
		fputs(", \"weak\": true}", out);
	}
	fputs("]}\n", out);
}

void json_diff_item_fields(FILE *out, const weft_diff_item *x)
{
	fprintf(out, "\"section\": \"%s\", \"change\": \"%s\", \"name\": ",
		weft_diff_section_name(x->section),
		weft_diff_change_name(x->change));
	weft_json_string(out, x->name);
	json_key_string(out, "a", x->a);
	json_key_string(out, "b", x->b);
}
