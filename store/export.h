/*
 * export.h - private to libweft_store: what the exports (export_prov.c,
 * export_rocrate.c) and the picture (render.c) share. The DAG alone does
 * not carry everything a PROV activity or an RO-Crate action states (when
 * a task ran, its command line and executable, who ran it), so an export
 * graph holds the DAG, those facts read from the runs' rows, and the
 * indices every format walks: each edge's task and artifact, the version
 * an update changed, and which tasks read what another wrote.
 */
#ifndef WEFT_STORE_EXPORT_H
#define WEFT_STORE_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <weft/store.h>

/* The namespace of weft's own terms in PROV and JSON-LD documents. A URN:
 * weft has no web site to name them under, and a URN cannot be mistaken
 * for one that should resolve. */
#define WEFT_EXPORT_NS "urn:weft:"

/* What the DAG does not say about a task, from its run's rows. */
struct export_task {
	int64_t started_ns, ended_ns;
	char *command; /* the root process's argv joined by spaces, or NULL */
	char *exe;     /* the root process's executable, or NULL */
	char *cwd;     /* its working directory, or NULL */
	char *user;    /* the job's user; a local run: the store's owner */
	char *job;     /* the job id, or NULL */
};

/* A task reading what another wrote (PROV wasInformedBy). */
struct export_informed {
	size_t informed, informant; /* task indices */
	bool weak;                  /* every edge behind it is weak */
};

struct export_graph {
	const weft_dag *d;
	weft_dag own; /* what d points to when loaded here */
	bool owns;
	struct export_task *facts; /* per task */
	bool *task_in, *art_in;    /* what the scope keeps */
	size_t *edge_task;         /* per edge: its task, or SIZE_MAX */
	size_t *edge_art;          /* per edge: its artifact, or SIZE_MAX */
	size_t *updated;           /* per artifact: the version its writer
				      updated to make it, or SIZE_MAX */
	size_t *parent;     /* per task: its parent's index, or SIZE_MAX */
	size_t *art_task;   /* per artifact: the task of its first edge */
	size_t *task_first; /* task t's edges, reads and writes: */
	size_t *task_edges; /* task_edges[task_first[t]..[t+1]) */
	struct export_informed *informed;
	size_t ninformed;
};

/* Load the DAG of sc and everything above; err says why not. A run
 * scope keeps that task and the artifacts on its edges. */
int export_graph_load(weft_store *s, const weft_export_scope *sc,
		      struct export_graph *g, char err[WEFT_EXPORT_ERR_BYTES]);
/* The same over a DAG the caller keeps (every task kept; an artifact
 * nobody wrote whose path hide() accepts is left out). */
int export_graph_over(weft_store *s, const weft_dag *d,
		      weft_render_hide_fn hide, struct export_graph *g,
		      char err[WEFT_EXPORT_ERR_BYTES]);
void export_graph_free(struct export_graph *g);
/* Whether edge i is kept: both of its ends are. */
bool export_edge_in(const struct export_graph *g, size_t i);

/* s as an IRI fragment or path: unreserved bytes and those in keep pass,
 * every other byte as %XX (so any byte string makes a valid IRI). */
void export_iri_escaped(FILE *out, const char *s, const char *keep);
/* The last component of a path ("/" for "/"). */
const char *export_basename(const char *path);
/* "blake2b-256:<hex>" of a's hash into text, or NULL when it has none. */
const char *export_hash_text(const weft_dag_artifact *a,
			     char text[WEFT_HASH_TEXT_BYTES]);
/* A task's value that names something of its own: its user, its tool. */
typedef const char *(*export_key_fn)(const struct export_graph *g, size_t t);
const char *export_user_of(const struct export_graph *g, size_t t);
/* Per task, whether it is the first kept task (in task order) with its
 * value of key: each user or tool once. malloc'd; NULL when out of
 * memory. */
bool *export_first_of(const struct export_graph *g, export_key_fn key);
/* sep "key": "v" (v a JSON string); nothing when v is NULL. */
void export_str_member(FILE *out, const char *sep, const char *key,
		       const char *v);
/* Task t's own facts as members weft:runId, weft:command,
 * weft:executable, weft:cwd, weft:node, weft:backend, weft:job,
 * weft:exitCode, and weft:complete false when parts are missing (its
 * records are then incomplete), each after sep. */
void export_task_members(FILE *out, const char *sep,
			 const struct export_graph *g, size_t t);
/* err from a failed write of out (errno), or 0 when it went fine. */
int export_check_written(FILE *out, const char *what,
			 char err[WEFT_EXPORT_ERR_BYTES]);

#endif /* WEFT_STORE_EXPORT_H */
