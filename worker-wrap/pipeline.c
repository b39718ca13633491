/*
 * pipeline.c - after the tracer: hash what a traced run read and wrote
 * (through the node's hash cache), then record it as signed fragments,
 * spool them and ship them to the job's coordinator. One path for `weft
 * run` (to a coordinator in its own process), `weft wrap`, `weft submit
 * --mode in-cluster` and the Slurm task collector: local or distributed
 * only changes the URL.
 *
 * Nothing here touches the workload's status: a failure is a warning in
 * the run's report or a line on stderr, and fragments that were not
 * acknowledged stay in the spool for `weft flush` or the next wrapper.
 */
#include <stdio.h>
#include <string.h>

#include <weft/base.h>
#include <weft/store.h>
#include <weft/wrap.h>

void weft_wrap_task_name(char *out, size_t outsz, const weft_report *r)
{
	size_t len = 0;
	out[0] = '\0';
	if (!r->nprocesses)
		return;
	const weft_process_rec *p = &r->processes[0];
	for (uint32_t i = 0; i < p->argc && len + 1 < outsz; i++) {
		int n = snprintf(out + len, outsz - len, "%s%s", i ? " " : "",
				 p->argv[i]);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (len >= outsz)
		out[outsz - 1] = '\0';
}

static void say_shipped(const weft_wrap_ship_opts *s,
			const weft_wrap_ship_stats *st, size_t nfrag)
{
	if (st->left && !s->local)
		fprintf(stderr,
			"weft: task %s: %zu of %zu fragment%s not yet "
			"acknowledged by %s; kept in %s ('weft flush' sends "
			"them)\n",
			s->id->task, st->left, nfrag, nfrag == 1 ? "" : "s",
			s->env->coordinator, s->env->spool);
	else if (st->left)
		fprintf(stderr,
			"weft: task %s: %zu of %zu fragment%s not yet "
			"stored; kept in %s (the project's next weft "
			"command, 'weft run' or a reader such as 'weft "
			"show', stores them)\n",
			s->id->task, st->left, nfrag, nfrag == 1 ? "" : "s",
			s->env->spool);
	else if (s->verbose)
		fprintf(stderr,
			"weft: task %s: %zu fragment%s shipped to %s (%zu "
			"stored, %zu already there, %zu rejected)\n",
			s->id->task, nfrag, nfrag == 1 ? "" : "s",
			s->env->coordinator, st->stored, st->duplicate,
			st->rejected);
}

int weft_wrap_ship_left(weft_wrap_shipper *sh, const char *spool,
			const char *url)
{
	const weft_wrap_ship_stats *st = weft_wrap_shipper_stats(sh);
	size_t before = st->stored + st->duplicate;
	weft_wrap_shipper_set_local(sh, url);
	int rc = weft_wrap_ship_spool(sh, spool);
	size_t stored = st->stored + st->duplicate - before;
	if (stored)
		fprintf(stderr,
			"weft: %zu fragment%s that earlier runs of this "
			"project left in %s (they ended before storing them) "
			"%s now stored\n",
			stored, stored == 1 ? "" : "s", spool,
			stored == 1 ? "is" : "are");
	return rc;
}

/* What earlier writers left in the spool, after this run's own. */
static void ship_leftovers(const weft_wrap_ship_opts *s, weft_wrap_shipper *sh)
{
	weft_wrap_shipper_set_progress(sh, NULL, NULL, 0); /* this run's */
	if (s->local)
		weft_wrap_ship_left(sh, s->env->spool, s->env->coordinator);
	else
		weft_wrap_ship_spool(sh, s->env->spool);
}

int weft_wrap_record_task(const weft_wrap_ship_opts *s, const weft_report *r,
			  weft_spool_writer **w, size_t *nfrag)
{
	char name[WEFT_MAX_TASK_BYTES + 1], preflight[128], err[1024];
	/* The DAG shows a task by the name the engine or the user gave it
	 * (4242.0.3@cn07, --task); a task only this host names (pidN@HOST)
	 * by its command. */
	if (s->name)
		snprintf(name, sizeof(name), "%s", s->name);
	else if (strcmp(s->id->source, "host") != 0)
		snprintf(name, sizeof(name), "%s", s->id->task);
	else
		weft_wrap_task_name(name, sizeof(name), r);
	snprintf(preflight, sizeof(preflight), "%s: preflight passed",
		 r->backend);
	weft_wrap_run run = {
		.env = s->env,
		.id = s->id,
		.name = name,
		.preflight = preflight,
		.part_bytes = s->part_bytes,
	};
	if (weft_wrap_record(&run, r, w, nfrag, err, sizeof(err)) != WEFT_OK) {
		weft_say("task %s: not recorded: %s", s->id->task, err);
		return 1;
	}
	return 0;
}

int weft_wrap_ship_task(const weft_wrap_ship_opts *s, weft_spool_writer *w,
			size_t nfrag)
{
	weft_wrap_shipper *sh;
	if (weft_wrap_shipper_new(s->env->tls_ca, s->ship_timeout_ms, stderr,
				  &sh) != WEFT_OK) {
		weft_spool_writer_close(w, false);
		weft_say("out of memory; the fragments stay in %s",
			 s->env->spool);
		return 1;
	}
	if (s->progress)
		weft_wrap_shipper_set_progress(sh, s->progress, s->progress_arg,
					       nfrag);
	int rc = weft_wrap_ship_writer(sh, w);
	weft_spool_writer_close(w, rc == WEFT_OK);
	say_shipped(s, weft_wrap_shipper_stats(sh), nfrag);
	/* Then what earlier wrappers on this node (or earlier runs of this
	 * project) left behind, in what is left of the time. */
	if (rc == WEFT_OK && (s->others || s->local))
		ship_leftovers(s, sh);
	weft_wrap_shipper_free(sh);
	return rc == WEFT_OK ? 0 : 1;
}

int weft_wrap_ship_report(const weft_wrap_ship_opts *s, const weft_report *r)
{
	weft_spool_writer *w;
	size_t nfrag;
	if (weft_wrap_record_task(s, r, &w, &nfrag) != 0)
		return 1;
	return weft_wrap_ship_task(s, w, nfrag);
}

void weft_wrap_hash_files(weft_store **cache, const char *task,
			  const weft_prehash *pre, weft_report *r, int verbose,
			  weft_progress_fn progress, void *progress_arg)
{
	char path[WEFT_MAX_PATH_BYTES];
	const char *at = weft_wrap_hash_cache(path, r, stderr);
	size_t hashed = 0, nread = 0;
	int err = weft_report_hash_files_cached(cache, at, pre, r, &hashed,
						&nread, progress, progress_arg);
	if (err != WEFT_OK)
		weft_report_warn(r, "hashing incomplete: %s",
				 weft_strerror(err));
	if (verbose)
		fprintf(stderr,
			"weft: task %s: hashed %zu files, read %zu, %zu from "
			"the hash cache %s\n",
			task, hashed, nread,
			hashed > nread ? hashed - nread : 0,
			*cache ? at : "(none)");
}
