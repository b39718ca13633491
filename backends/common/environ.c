/*
 * environ.c - what a process's result depends on besides files: its
 * environment, as the kernel gave it to the program at its exec.
 *
 * Backends read the environ block (ptrace at the exec stop, where it is
 * exact; preload and eBPF after the exec was reported, where it can race
 * with a later exec: then it is checked against the image's executable
 * and recorded as unknown when they differ, never guessed). The
 * classifier keeps a block only for an image whose environment differs
 * from the image it came from (most share the run's), and at finish turns
 * each into names and value hashes: values stay in memory, only the names
 * the user listed (record.env_values) keep theirs in clear.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "classifier_internal.h"

/* An environ block larger than this is not kept (Linux takes at most
 * ARG_MAX, 2 MiB by default, for argv and envp together). */
#define ENV_BLOCK_MAX (4u << 20)

int weft_env_read_proc(pid_t pid, const char *expect_exe, char **block,
		       size_t *len)
{
	*block = NULL;
	*len = 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return WEFT_EV_ENV_UNKNOWN;
	size_t cap = 16384, n = 0;
	char *buf = malloc(cap);
	ssize_t r = buf ? 1 : -1;
	while (r > 0) {
		if (n == cap) {
			/* Past the limit, or out of memory: not vouched for. */
			char *more = cap < ENV_BLOCK_MAX ? realloc(buf, cap * 2)
							 : NULL;
			if (!more) {
				r = -1;
				break;
			}
			buf = more;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r > 0)
			n += (size_t)r;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return WEFT_EV_ENV_UNKNOWN;
	}
	if (expect_exe) {
		/* Read after the exec was reported: the process may have
		 * exec'd another program since. Same executable after the
		 * read, or the block is not vouched for. */
		char exe[PATH_MAX];
		char *want = realpath(expect_exe, NULL);
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
		ssize_t k = readlink(path, exe, sizeof(exe) - 1);
		bool same = want && k > 0 && (size_t)k == strlen(want) &&
			    memcmp(exe, want, (size_t)k) == 0;
		free(want);
		if (!same) {
			free(buf);
			return WEFT_EV_ENV_UNKNOWN;
		}
	}
	*block = buf;
	*len = n;
	return WEFT_EV_ENV_BLOCK;
}

int weft_classifier_env_values(weft_classifier *c, const char *const *names,
			       size_t n)
{
	char **v = n ? calloc(n, sizeof(*v)) : NULL;
	if (n && !v)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!(v[i] = strdup(names[i]))) {
			while (i--)
				free(v[i]);
			free(v);
			return WEFT_ENOMEM;
		}
	}
	for (size_t i = 0; i < c->nenv_values; i++)
		free(c->env_values[i]);
	free(c->env_values);
	c->env_values = v;
	c->nenv_values = n;
	return WEFT_OK;
}

/* The environment in effect for p: its own block, or its parent's. */
static const struct proc *env_owner(const struct weft_classifier *c,
				    const struct proc *p)
{
	while (p && p->env_state == WEFT_ENV_PARENT)
		p = p->parent < c->nprocs ? c->procs[p->parent] : NULL;
	return p;
}

void proc_env_inherit(const struct weft_classifier *c, struct proc *child)
{
	const struct proc *par =
		child->parent < c->nprocs ? c->procs[child->parent] : NULL;
	const struct proc *o = env_owner(c, par);
	child->env_state = o && o->env_state != WEFT_ENV_NONE ? WEFT_ENV_PARENT
							      : WEFT_ENV_NONE;
}

int proc_env_exec(struct weft_classifier *c, struct proc *p,
		  const weft_event *ev)
{
	free(p->env);
	p->env = NULL;
	p->env_len = 0;
	if (ev->env_state == WEFT_EV_ENV_UNKNOWN) {
		p->env_state = WEFT_ENV_UNKNOWN;
		return WEFT_OK;
	}
	if (ev->env_state != WEFT_EV_ENV_BLOCK || (ev->env_len && !ev->env)) {
		p->env_state = WEFT_ENV_NONE;
		return WEFT_OK;
	}
	const struct proc *par =
		p->parent < c->nprocs ? c->procs[p->parent] : NULL;
	const struct proc *o = env_owner(c, par);
	if (o && o->env_state == WEFT_ENV_LISTED && o->env_len == ev->env_len &&
	    memcmp(o->env, ev->env, ev->env_len) == 0) {
		p->env_state = WEFT_ENV_PARENT;
		return WEFT_OK;
	}
	p->env = malloc(ev->env_len ? ev->env_len : 1);
	if (!p->env) {
		p->env_state = WEFT_ENV_UNKNOWN;
		return WEFT_ENOMEM;
	}
	memcpy(p->env, ev->env, ev->env_len);
	p->env_len = ev->env_len;
	p->env_state = WEFT_ENV_LISTED;
	return WEFT_OK;
}

/* Entries in block order, sorted by name and then by that order, so that
 * the first of a repeated name comes first. */
struct env_sort {
	weft_env_entry e;
	size_t order;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct env_sort *x = a, *y = b;
	int r = strcmp(x->e.name, y->e.name);
	if (r)
		return r;
	return (x->order > y->order) - (x->order < y->order);
}

static bool listed(const struct weft_classifier *c, const char *name,
		   size_t len)
{
	for (size_t i = 0; i < c->nenv_values; i++)
		if (strlen(c->env_values[i]) == len &&
		    memcmp(c->env_values[i], name, len) == 0)
			return true;
	return false;
}

/* The block of p as entries of rec: names sorted, the first of a repeated
 * name kept (what getenv returns), values hashed unless listed. Strings
 * without '=' name nothing and are left out; an environment beyond the
 * schema's limits is recorded as unknown rather than partial. */
static int env_to_entries(const struct weft_classifier *c, const struct proc *p,
			  weft_process_rec *rec)
{
	size_t count = 0;
	for (size_t i = 0; i < p->env_len; i++)
		count += p->env[i] == '\0';
	if (p->env_len && p->env[p->env_len - 1] != '\0')
		count++;
	struct env_sort *v = count ? calloc(count, sizeof(*v)) : NULL;
	if (count && !v)
		return WEFT_ENOMEM;
	size_t n = 0, clear = 0;
	bool toobig = false;
	int err = WEFT_OK;
	for (size_t off = 0; off < p->env_len && !err;) {
		const char *s = p->env + off;
		size_t len = strnlen(s, p->env_len - off);
		off += len + 1;
		const char *eq = memchr(s, '=', len);
		if (!eq || eq == s)
			continue;
		size_t nlen = (size_t)(eq - s);
		const char *val = eq + 1;
		size_t vlen = len - nlen - 1;
		if (nlen > WEFT_MAX_ENV_NAME_BYTES) {
			toobig = true;
			continue;
		}
		weft_env_entry *x = &v[n].e;
		v[n].order = n;
		n++;
		if (!(x->name = strndup(s, nlen))) {
			err = WEFT_ENOMEM;
		} else if (listed(c, s, nlen)) {
			clear += vlen;
			toobig |= clear > WEFT_MAX_ARGV_BYTES;
			if (!(x->value = strndup(val, vlen)))
				err = WEFT_ENOMEM;
		} else {
			weft_env_value_hash(val, vlen, x->hash);
		}
	}
	if (!err)
		qsort(v, n, sizeof(*v), entry_cmp);
	size_t w = 0;
	weft_env_entry *e = NULL;
	if (!err && !toobig && n <= WEFT_MAX_ENV_ENTRIES && n &&
	    !(e = calloc(n, sizeof(*e))))
		err = WEFT_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!err && !toobig && n <= WEFT_MAX_ENV_ENTRIES &&
		    (w == 0 || strcmp(e[w - 1].name, v[i].e.name) != 0)) {
			e[w++] = v[i].e;
			continue;
		}
		free(v[i].e.name);
		free(v[i].e.value);
	}
	free(v);
	if (err) {
		for (size_t i = 0; i < w; i++) {
			free(e[i].name);
			free(e[i].value);
		}
		free(e);
		return err;
	}
	if (toobig || n > WEFT_MAX_ENV_ENTRIES) {
		rec->env_state = WEFT_ENV_UNKNOWN;
		rec->env_missing = strdup("its environment is beyond weft's "
					  "limits");
		return WEFT_OK;
	}
	rec->env = e;
	rec->nenv = (uint32_t)w;
	rec->env_state = WEFT_ENV_LISTED;
	return WEFT_OK;
}

int proc_env_record(const struct weft_classifier *c, const struct proc *p,
		    weft_process_rec *rec)
{
	switch (p->env_state) {
	case WEFT_ENV_LISTED:
		return env_to_entries(c, p, rec);
	case WEFT_ENV_PARENT:
		/* Its parent must be in the report to say "the same". */
		if (rec->has_parent)
			rec->env_state = WEFT_ENV_PARENT;
		else {
			rec->env_state = WEFT_ENV_UNKNOWN;
			rec->env_missing =
				strdup("the process it inherited it from "
				       "was not recorded");
		}
		return WEFT_OK;
	case WEFT_ENV_UNKNOWN:
		rec->env_state = WEFT_ENV_UNKNOWN;
		rec->env_missing = strdup("the tracer could not read it "
					  "(the process had ended or "
					  "started another program)");
		return WEFT_OK;
	}
	return WEFT_OK;
}
