/*
 * identity.c - which task this wrapper traces, in the engine's own terms:
 * Slurm's job.step.task@node, Ray's job and worker ids, or what the user
 * passed as --task. The name is what `weft dag` shows and what WEFT_PARENT
 * refers to, so it must be stable and readable; malformed engine variables
 * are reported rather than guessed around.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <weft/wrap.h>
#include "wrap_internal.h"

/* A Slurm or Ray id: 1 to 64 of [A-Za-z0-9_.-]. */
static bool id_ok(const char *v, bool digits_only)
{
	size_t n = strlen(v);
	if (n == 0 || n >= WEFT_MAX_NAME_BYTES)
		return false;
	for (; *v; v++) {
		bool digit = *v >= '0' && *v <= '9';
		bool word = digit || (*v >= 'a' && *v <= 'z') ||
			    (*v >= 'A' && *v <= 'Z') || strchr("_.-", *v);
		if (digits_only ? !digit : !word)
			return false;
	}
	return true;
}

/* The value of name, checked; def when unset or empty. */
static int engine_var(weft_wrap_getenv_fn get, const char *name,
		      bool digits_only, const char *def, const char **out,
		      char *err, size_t errsz)
{
	const char *v = get(name);
	if (!v || !*v) {
		*out = def;
		return 0;
	}
	if (!id_ok(v, digits_only))
		return wrap_fail(err, errsz, "%s='%.64s': expected %s", name, v,
				 digits_only ? "a number"
					     : "an id of letters, digits, '_', "
					       "'.', '-'");
	*out = v;
	return 0;
}

static void engine_id(weft_wrap_identity *id, const char *key,
		      const char *value)
{
	if (!value || id->nengine == WEFT_MAX_ENGINE_IDS)
		return;
	weft_engine_id *e = &id->engine[id->nengine++];
	snprintf(e->key, sizeof(e->key), "%s", key);
	snprintf(e->value, sizeof(e->value), "%s", value);
}

static int set_task(weft_wrap_identity *id, char *err, size_t errsz,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int set_task(weft_wrap_identity *id, char *err, size_t errsz,
		    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(id->task, sizeof(id->task), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(id->task))
		return wrap_fail(err, errsz,
				 "task identity longer than %d bytes",
				 WEFT_MAX_TASK_BYTES);
	return 0;
}

static int from_slurm(weft_wrap_identity *id, weft_wrap_getenv_fn get,
		      char *err, size_t errsz)
{
	const char *job, *step, *proc, *nodeid, *name;
	if (engine_var(get, "SLURM_JOB_ID", true, NULL, &job, err, errsz) ||
	    engine_var(get, "SLURM_STEP_ID", false, "batch", &step, err,
		       errsz) ||
	    engine_var(get, "SLURM_PROCID", true, "0", &proc, err, errsz) ||
	    engine_var(get, "SLURM_NODEID", true, NULL, &nodeid, err, errsz) ||
	    engine_var(get, "SLURMD_NODENAME", false, NULL, &name, err, errsz))
		return WEFT_EINVAL;
	engine_id(id, "slurm_job", job);
	engine_id(id, "slurm_step", step);
	engine_id(id, "slurm_proc", proc);
	engine_id(id, "slurm_node", nodeid);
	if (name)
		snprintf(id->node, sizeof(id->node), "%s", name);
	else if (nodeid)
		snprintf(id->node, sizeof(id->node), "node%s", nodeid);
	id->source = "slurm";
	return set_task(id, err, errsz, "%s.%s.%s@%s", job, step, proc,
			id->node);
}

static int from_ray(weft_wrap_identity *id, weft_wrap_getenv_fn get, char *err,
		    size_t errsz)
{
	const char *job, *worker, *task, *node;
	if (engine_var(get, "RAY_JOB_ID", false, NULL, &job, err, errsz) ||
	    engine_var(get, "RAY_WORKER_ID", false, NULL, &worker, err,
		       errsz) ||
	    engine_var(get, "RAY_TASK_ID", false, NULL, &task, err, errsz) ||
	    engine_var(get, "RAY_NODE_ID", false, NULL, &node, err, errsz))
		return WEFT_EINVAL;
	char pid[32];
	snprintf(pid, sizeof(pid), "pid%d", (int)getpid());
	id->source = "ray";
	engine_id(id, "ray_job", job);
	engine_id(id, "ray_worker", worker);
	engine_id(id, "ray_task", task);
	engine_id(id, "ray_node", node);
	/* Ray's node ids are 56 hex digits: the host name reads better, and
	 * the node id goes into the task name where it disambiguates. */
	if (node)
		return set_task(id, err, errsz, "ray.%s.%s.%.12s@%s", job,
				worker ? worker
				: task ? task
				       : pid,
				node, id->node);
	return set_task(id, err, errsz, "ray.%s.%s@%s", job,
			worker ? worker
			: task ? task
			       : pid,
			id->node);
}

int weft_wrap_identity_get(weft_wrap_identity *id, const char *flag_task,
			   weft_wrap_getenv_fn get, const char *hostname,
			   char *err, size_t errsz)
{
	memset(id, 0, sizeof(*id));
	snprintf(id->node, sizeof(id->node), "%s",
		 hostname && *hostname ? hostname : "localhost");
	if (flag_task) {
		if (weft_wrap_check_task(flag_task) != 0)
			return wrap_fail(err, errsz,
					 "--task '%.200s': expected 1 to %d "
					 "printable characters without spaces",
					 flag_task, WEFT_MAX_TASK_BYTES);
		id->source = "--task";
		return set_task(id, err, errsz, "%s", flag_task);
	}
	const char *slurm = get("SLURM_JOB_ID"), *ray = get("RAY_JOB_ID");
	if (slurm && *slurm)
		return from_slurm(id, get, err, errsz);
	if (ray && *ray)
		return from_ray(id, get, err, errsz);
	id->source = "host";
	return set_task(id, err, errsz, "pid%d@%s", (int)getpid(), id->node);
}
