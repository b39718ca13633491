/*
 * threads.c - the traced threads of one run, by tid. Every stop looks a
 * thread up, so this is an open-addressing hash (linear probing, deletion
 * by backward shift: no tombstones to slow lookups of a long run with many
 * short-lived processes). Entries are separately allocated so a pointer
 * stays valid while the table grows.
 */
#include <stdlib.h>

#include "ptrace_internal.h"

static size_t slot_of(const pt_threads *t, pid_t tid)
{
	uint32_t h = (uint32_t)tid * 2654435761u;
	return h & (t->cap - 1);
}

int pt_threads_init(pt_threads *t)
{
	t->cap = 64;
	t->n = 0;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	return t->slots ? 0 : WEFT_ENOMEM;
}

static void thread_free(pt_thread *th)
{
	if (th) {
		free(th->pending.paths);
		free(th);
	}
}

void pt_threads_free(pt_threads *t)
{
	for (size_t i = 0; t->slots && i < t->cap; i++)
		thread_free(t->slots[i]);
	free(t->slots);
	t->slots = NULL;
	t->cap = t->n = 0;
}

pt_thread *pt_threads_get(const pt_threads *t, pid_t tid)
{
	for (size_t i = slot_of(t, tid);; i = (i + 1) & (t->cap - 1)) {
		pt_thread *th = t->slots[i];
		if (!th || th->tid == tid)
			return th;
	}
}

static void place(pt_threads *t, pt_thread *th)
{
	size_t i = slot_of(t, th->tid);
	while (t->slots[i])
		i = (i + 1) & (t->cap - 1);
	t->slots[i] = th;
}

static int grow(pt_threads *t)
{
	pt_threads bigger = {.cap = t->cap * 2, .n = t->n};
	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	if (!bigger.slots)
		return WEFT_ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i])
			place(&bigger, t->slots[i]);
	free(t->slots);
	*t = bigger;
	return 0;
}

pt_thread *pt_threads_add(pt_threads *t, pid_t tid)
{
	/* Keep the load factor at most 1/2 so probes stay short. */
	if ((t->n + 1) * 2 > t->cap && grow(t) != 0)
		return NULL;
	pt_thread *th = calloc(1, sizeof(*th));
	if (!th)
		return NULL;
	th->tid = tid;
	th->pending.nr = -1;
	place(t, th);
	t->n++;
	return th;
}

void pt_threads_remove(pt_threads *t, pid_t tid)
{
	size_t i = slot_of(t, tid);
	while (t->slots[i] && t->slots[i]->tid != tid)
		i = (i + 1) & (t->cap - 1);
	if (!t->slots[i])
		return;
	thread_free(t->slots[i]);
	t->slots[i] = NULL;
	t->n--;
	/* Backward shift: re-place the rest of the cluster so no lookup stops
	 * early at the hole. */
	for (size_t j = (i + 1) & (t->cap - 1); t->slots[j];
	     j = (j + 1) & (t->cap - 1)) {
		pt_thread *th = t->slots[j];
		t->slots[j] = NULL;
		place(t, th);
	}
}
