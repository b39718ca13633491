/*
 * ray_worker_test.c - `weft wrap --ray` cutting a worker's run into Ray
 * tasks, with a real classifier fed synthetic events and a real control
 * socket: windows to tasks, the worker's own record, a lost marker, a task
 * that never ended, two threads' tasks at once, actor granularity, and a
 * message that is refused.
 */
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <weft/ray.h>

#define ROOT 4000
#define T2 4001

struct fixture {
	bool record; /* each task spooled when it ends */
	char spool[64];
	weft_wrap_env env;
	size_t recorded; /* tasks recorded while the worker ran */
	weft_ray_wrapper *w;
	weft_classifier *c;
	int sock;
	char marks[128];
	weft_report worker;
	weft_ray_task *tasks;
	size_t ntasks;
};

static void feed(struct fixture *f, weft_event *e)
{
	if (!e->tgid)
		e->tgid = ROOT;
	weft_ray_wrapper_observe(f->w, f->c, e);
	weft_classifier_feed(f->c, e);
}

static void open_write_close(struct fixture *f, int tid, const char *path)
{
	weft_event e = {.kind = WEFT_EV_OPEN,
			.pid = tid,
			.fd = AT_FDCWD,
			.flags = O_WRONLY | O_CREAT | O_TRUNC,
			.mode = 0644,
			.ret = 7,
			.path = path};
	feed(f, &e);
	weft_event w = {.kind = WEFT_EV_WRITE, .pid = tid, .fd = 7, .ret = 5};
	feed(f, &w);
	weft_event c = {.kind = WEFT_EV_CLOSE, .pid = tid, .fd = 7};
	feed(f, &c);
}

/* What the shim does after the wrapper's "ok". */
static void marker(struct fixture *f, int tid, int seq)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/mark.%d", f->marks, seq % 8);
	weft_event e = {.kind = WEFT_EV_OPEN,
			.pid = tid,
			.fd = AT_FDCWD,
			.flags = O_WRONLY | O_TRUNC,
			.ret = 9,
			.path = p};
	feed(f, &e);
	weft_event c = {.kind = WEFT_EV_CLOSE, .pid = tid, .fd = 9};
	feed(f, &c);
}

/* One message; returns the wrapper's answer. */
static const char *say(struct fixture *f, const char *fmt, ...)
{
	static char reply[256];
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	assert_int_equal(send(f->sock, msg, strlen(msg), 0), strlen(msg));
	ssize_t n = recv(f->sock, reply, sizeof(reply) - 1, 0);
	assert_true(n > 0);
	reply[n] = '\0';
	return reply;
}

static void begin(struct fixture *f, int tid, int seq, const char *task,
		  const char *actor, const char *name)
{
	assert_string_equal(
		say(f,
		    "{\"v\": 1, \"event\": \"begin\", \"seq\": %d, \"pid\": "
		    "%d, \"tid\": %d, \"kind\": \"%s\", \"name\": \"%s\", "
		    "\"task_id\": \"%s\", \"actor_id\": %s%s%s, \"job_id\": "
		    "\"01000000\", \"worker_id\": \"w1\"}",
		    seq, ROOT, tid, actor ? "actor_task" : "task", name, task,
		    actor ? "\"" : "", actor ? actor : "null",
		    actor ? "\"" : ""),
		"ok");
}

static void end(struct fixture *f, int tid, int seq, const char *task,
		bool failed)
{
	assert_string_equal(say(f,
				"{\"v\": 1, \"event\": \"end\", \"seq\": %d, "
				"\"pid\": %d, \"tid\": %d, \"task_id\": "
				"\"%s\"%s}",
				seq, ROOT, tid, task,
				failed ? ", \"failed\": true" : ""),
			    "ok");
}

/* A whole Ray task on the worker's main thread: its begin (seq) and its
 * end (seq + 1), each followed by its marker, writing path (unless NULL)
 * in between. */
static void whole_task(struct fixture *f, int seq, const char *task,
		       const char *actor, const char *name, const char *path,
		       bool failed)
{
	begin(f, ROOT, seq, task, actor, name);
	marker(f, ROOT, seq);
	if (path)
		open_write_close(f, ROOT, path);
	end(f, ROOT, seq + 1, task, failed);
	marker(f, ROOT, seq + 1);
}

static void start(struct fixture *f, enum weft_ray_granularity g, bool record)
{
	memset(f, 0, sizeof(*f));
	f->record = record;
	if (record) {
		snprintf(f->spool, sizeof(f->spool), "/tmp/weft-wrt-XXXXXX");
		assert_non_null(mkdtemp(f->spool));
		snprintf(f->env.spool, sizeof(f->env.spool), "%s", f->spool);
		snprintf(f->env.coordinator, sizeof(f->env.coordinator),
			 "tcp://127.0.0.1:1");
		snprintf(f->env.job, sizeof(f->env.job),
			 "6f1c1a52-7d3e-4a0e-9d3a-0c1b2d3e4f50");
		snprintf(f->env.token, sizeof(f->env.token),
			 "0123456789abcdef0123456789abcdef");
	}
	char err[256];
	weft_ray_opts o = {.granularity = g,
			   .diag = stderr,
			   .env = record ? &f->env : NULL,
			   .worker_task = "pid4000@host",
			   .node = "host",
			   .backend = "ptrace"};
	f->w = weft_ray_wrapper_new(&o, err, sizeof(err));
	if (!f->w)
		fail_msg("%s", err);
	assert_non_null(f->w);
	snprintf(f->marks, sizeof(f->marks), "%s", getenv("WEFT_RAY_MARKS"));
	f->c = weft_classifier_new();
	const char *argv[] = {"python3"};
	assert_int_equal(weft_classifier_add_process(f->c, ROOT, 0, "/w",
						     "/usr/bin/python3", argv,
						     1),
			 WEFT_OK);
	/* The first event starts the serving thread. */
	weft_event th = {.kind = WEFT_EV_FORK,
			 .pid = ROOT,
			 .ret = T2,
			 .flags = CLONE_THREAD | CLONE_FILES | CLONE_FS |
				  CLONE_VM};
	feed(f, &th);
	f->sock = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s",
		 getenv("WEFT_RAY_CONTROL"));
	assert_int_equal(connect(f->sock, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void stop(struct fixture *f)
{
	close(f->sock);
	weft_report_init(&f->worker);
	assert_int_equal(weft_classifier_finish(f->c, &f->worker), WEFT_OK);
	weft_classifier_free(f->c);
	char task[WEFT_MAX_TASK_BYTES + 1] = "pid4000@host";
	weft_engine_id engine[WEFT_MAX_ENGINE_IDS];
	uint32_t nengine = 0;
	assert_int_equal(weft_ray_wrapper_finish(f->w, &f->worker, "host",
						 false, task, sizeof(task),
						 engine, &nengine, &f->tasks,
						 &f->ntasks),
			 0);
	f->recorded = weft_ray_wrapper_recorded(f->w);
	if (!f->record)
		assert_int_equal(f->recorded, 0);
	assert_string_equal(task, "ray.01000000.w1@host");
}

static void done(struct fixture *f)
{
	char dir[128];
	snprintf(dir, sizeof(dir), "%s", f->marks);
	weft_ray_tasks_free(f->tasks, f->ntasks);
	weft_report_release(&f->worker);
	weft_ray_wrapper_free(f->w);
	if (f->record) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", f->spool);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(access(dir, F_OK), -1); /* removed */
}

static const weft_ray_task *task_named(const struct fixture *f,
				       const char *name)
{
	for (size_t i = 0; i < f->ntasks; i++)
		if (strcmp(f->tasks[i].name, name) == 0)
			return &f->tasks[i];
	fail_msg("no task %s", name);
	return NULL;
}

/* The paths of r's records, joined by spaces. */
static const char *paths(const weft_report *r)
{
	static char out[1024];
	out[0] = '\0';
	for (size_t i = 0; i < r->nfiles; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s",
			 i ? " " : "", r->files[i].path);
	return out;
}

static bool warned(const weft_report *r, const char *text)
{
	for (size_t i = 0; i < r->nwarnings; i++)
		if (strstr(r->warnings[i], text))
			return true;
	return false;
}

static void tasks_and_worker(bool record)
{
	struct fixture f;
	start(&f, WEFT_RAY_PER_CALL, record);
	open_write_close(&f, ROOT, "/w/pre");
	whole_task(&f, 1, "aa11", NULL, "stage1", "/w/a", false);
	open_write_close(&f, ROOT, "/w/mid");
	whole_task(&f, 3, "bb22", NULL, "stage2", "/w/b", true); /* raised */
	begin(&f, ROOT, 5, "cc33", NULL, "stage3");
	marker(&f, ROOT, 5);
	open_write_close(&f, ROOT, "/w/c"); /* the worker dies in it */
	stop(&f);

	/* The worker's own record is the same either way. */
	if (record) {
		assert_int_equal(f.worker.nwarnings, 0);
		assert_int_equal(f.recorded, 2);
		assert_int_equal(f.ntasks, 1);
		assert_string_equal(paths(&task_named(&f, "stage3")->report),
				    "/w/c");
		assert_string_equal(paths(&f.worker), "/w/mid /w/pre");
		/* The rest through the same writer: seqs 3 and 4. Nobody
		 * answers (port 1): all four stay in the spool, in one
		 * writer's directory. */
		assert_true(weft_ray_wrapper_streaming(f.w));
		weft_wrap_identity id = {.source = "ray",
					 .task = "ray.01000000.w1@host",
					 .node = "host"};
		char err[256];
		assert_int_equal(weft_ray_wrapper_record(f.w, &id, "worker", "",
							 &f.worker, err,
							 sizeof(err)),
				 0);
		weft_ray_task *c = &f.tasks[0];
		snprintf(id.task, sizeof(id.task), "%s", c->id);
		assert_int_equal(weft_ray_wrapper_record(f.w, &id, c->name,
							 "ray.01000000.w1@host",
							 &c->report, err,
							 sizeof(err)),
				 0);
		weft_ray_wrapper_ship_deadline(f.w, 0);
		weft_wrap_stream_stats st;
		weft_ray_wrapper_ship_finish(f.w, &st);
		assert_int_equal(st.records, 4);
		assert_int_equal(st.fragments, 4);
		assert_int_equal(st.left, 4);
		assert_int_equal(st.stored, 0);
		for (int seq = 1; seq <= 5; seq++) {
			char p[sizeof(st.writer_dir) + 32];
			snprintf(p, sizeof(p), "%s/f-%020d", st.writer_dir,
				 seq);
			assert_int_equal(access(p, F_OK), seq <= 4 ? 0 : -1);
		}
		done(&f);
		return;
	}
	assert_int_equal(f.ntasks, 3);
	const weft_ray_task *a = task_named(&f, "stage1");
	assert_string_equal(a->id, "ray.01000000.aa11@host");
	assert_string_equal(paths(&a->report), "/w/a");
	/* Ray's ids, and the process and thread that ran it. */
	const char *want[][2] = {{"ray_job", "01000000"}, {"ray_task", "aa11"},
				 {"ray_worker", "w1"},    {"ray_kind", "task"},
				 {"pid", "4000"},         {"tid", "4000"}};
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		bool found = false;
		for (uint32_t e = 0; e < a->nengine; e++)
			found |= strcmp(a->engine[e].key, want[k][0]) == 0 &&
				 strcmp(a->engine[e].value, want[k][1]) == 0;
		assert_true(found);
	}
	assert_int_equal(a->report.exit_code, 0);
	assert_true(a->report.files[0].written);
	assert_true(a->report.started_ns > 0 &&
		    a->report.ended_ns >= a->report.started_ns);
	const weft_ray_task *b = task_named(&f, "stage2");
	assert_string_equal(paths(&b->report), "/w/b");
	assert_int_equal(b->report.exit_code, 1);
	assert_true(warned(&b->report, "raised"));
	const weft_ray_task *c = task_named(&f, "stage3");
	assert_string_equal(paths(&c->report), "/w/c");
	assert_int_equal(c->report.exit_code, 1);
	assert_true(warned(&c->report, "did not end"));
	/* Outside every task: the worker's; its processes stay. */
	assert_string_equal(paths(&f.worker), "/w/mid /w/pre");
	assert_int_equal(f.worker.nprocesses, 1);
	done(&f);
}

static void test_tasks_and_worker(void **state)
{
	(void)state;
	tasks_and_worker(false);
}

/* Each task hashed and spooled by the recorder thread when it ended; only
 * the one that never ended is left for the end. */
static void test_tasks_recorded_as_they_end(void **state)
{
	(void)state;
	tasks_and_worker(true);
}

/* A task that cannot be spooled when it ends (here: a token the
 * enrolment refuses) is recorded after the worker exited instead. */
static void test_recording_fails_falls_back(void **state)
{
	(void)state;
	struct fixture f;
	start(&f, WEFT_RAY_PER_CALL, true);
	snprintf(f.env.token, sizeof(f.env.token), "short");
	weft_ray_wrapper_free(f.w);
	char err[256];
	weft_ray_opts o = {.diag = stderr,
			   .env = &f.env,
			   .worker_task = "pid4000@host",
			   .node = "host",
			   .backend = "ptrace"};
	f.w = weft_ray_wrapper_new(&o, err, sizeof(err));
	snprintf(f.marks, sizeof(f.marks), "%s", getenv("WEFT_RAY_MARKS"));
	close(f.sock);
	weft_classifier_free(f.c);
	f.c = weft_classifier_new();
	const char *argv[] = {"python3"};
	weft_classifier_add_process(f.c, ROOT, 0, "/w", "/usr/bin/python3",
				    argv, 1);
	weft_event th = {.kind = WEFT_EV_FORK,
			 .pid = ROOT,
			 .ret = T2,
			 .flags = CLONE_THREAD | CLONE_FILES | CLONE_FS |
				  CLONE_VM};
	feed(&f, &th);
	f.sock = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s",
		 getenv("WEFT_RAY_CONTROL"));
	assert_int_equal(connect(f.sock, (struct sockaddr *)&a, sizeof(a)), 0);
	whole_task(&f, 1, "aa11", NULL, "stage1", "/w/a", false);
	stop(&f);
	assert_int_equal(f.recorded, 0);
	assert_false(weft_ray_wrapper_streaming(f.w));
	assert_int_equal(f.ntasks, 1);
	assert_string_equal(paths(&task_named(&f, "stage1")->report), "/w/a");
	assert_true(warned(&f.worker, "recorded after the worker exited"));
	done(&f);
}

/* The tracer's events come late (eBPF, preload): the worker has sent
 * later messages by the time a marker is seen. */
static void test_markers_late(void **state)
{
	(void)state;
	struct fixture f;
	start(&f, WEFT_RAY_PER_CALL, true);
	begin(&f, ROOT, 1, "aa11", NULL, "first");
	end(&f, ROOT, 2, "aa11", false);
	begin(&f, ROOT, 3, "bb22", NULL, "second");
	end(&f, ROOT, 4, "bb22", false);
	begin(&f, ROOT, 5, "cc33", NULL, "third");
	/* Now the events, in the thread's order. */
	marker(&f, ROOT, 1);
	open_write_close(&f, ROOT, "/w/a");
	marker(&f, ROOT, 2);
	open_write_close(&f, ROOT, "/w/between");
	marker(&f, ROOT, 3);
	open_write_close(&f, ROOT, "/w/b");
	marker(&f, ROOT, 4);
	marker(&f, ROOT, 5);
	open_write_close(&f, ROOT, "/w/c");
	stop(&f);
	assert_int_equal(f.recorded, 2);
	assert_int_equal(f.ntasks, 1);
	assert_string_equal(paths(&task_named(&f, "third")->report), "/w/c");
	assert_string_equal(paths(&f.worker), "/w/between");
	done(&f);
}

static void test_lost_marker(void **state)
{
	(void)state;
	struct fixture f;
	start(&f, WEFT_RAY_PER_CALL, false);
	begin(&f, ROOT, 1, "aa11", NULL, "lost"); /* its marker never seen */
	open_write_close(&f, ROOT, "/w/x");
	end(&f, ROOT, 2, "aa11", false);
	marker(&f, ROOT, 2);
	whole_task(&f, 3, "bb22", NULL, "found", "/w/y", false);
	stop(&f);
	assert_int_equal(f.ntasks, 1);
	assert_string_equal(paths(&task_named(&f, "found")->report), "/w/y");
	assert_string_equal(paths(&f.worker), "/w/x");
	assert_true(warned(&f.worker, "1 Ray tasks' boundaries were not seen"));
	done(&f);
}

static void test_two_threads_at_once(void **state)
{
	(void)state;
	struct fixture f;
	start(&f, WEFT_RAY_PER_CALL, false);
	begin(&f, ROOT, 1, "aa11", "ac01", "A.m");
	marker(&f, ROOT, 1);
	open_write_close(&f, ROOT, "/w/a-only");
	begin(&f, T2, 2, "bb22", "ac01", "A.m");
	marker(&f, T2, 2);
	open_write_close(&f, T2, "/w/both");
	end(&f, ROOT, 3, "aa11", false);
	marker(&f, ROOT, 3);
	open_write_close(&f, T2, "/w/b-only");
	end(&f, T2, 4, "bb22", false);
	marker(&f, T2, 4);
	stop(&f);
	assert_int_equal(f.ntasks, 2);
	const weft_ray_task *a = &f.tasks[0], *b = &f.tasks[1];
	if (strcmp(a->id, b->id) > 0) {
		const weft_ray_task *t = a;
		a = b;
		b = t;
	}
	assert_string_equal(a->id, "ray.01000000.aa11@host");
	assert_string_equal(paths(&a->report), "/w/a-only /w/both");
	assert_string_equal(paths(&b->report), "/w/b-only /w/both");
	assert_true(warned(&a->report, "at the same time"));
	assert_true(warned(&b->report, "at the same time"));
	assert_string_equal(paths(&f.worker), "");
	done(&f);
}

static void test_actor_granularity(void **state)
{
	(void)state;
	struct fixture f;
	start(&f, WEFT_RAY_PER_ACTOR, true);
	for (int i = 0; i < 2; i++) {
		char task[16], path[16];
		snprintf(task, sizeof(task), "t%d", i);
		snprintf(path, sizeof(path), "/w/call%d", i);
		whole_task(&f, 2 * i + 1, task, "ac01", "Counter.add", path,
			   false);
		open_write_close(&f, ROOT, "/w/between");
	}
	/* A plain task stays one per call. */
	whole_task(&f, 5, "t9", NULL, "plain", NULL, false);
	stop(&f);
	/* The plain task was spooled when it ended; the actor's calls wait
	 * for the end. */
	assert_int_equal(f.recorded, 1);
	assert_int_equal(f.ntasks, 1);
	const weft_ray_task *a = task_named(&f, "Counter");
	assert_string_equal(a->id, "ray.01000000.actor.ac01@host");
	assert_string_equal(paths(&a->report), "/w/call0 /w/call1");
	assert_true(warned(&a->report, "2 calls of actor ac01"));
	assert_string_equal(paths(&f.worker), "/w/between");
	done(&f);
}

static void test_bad_messages(void **state)
{
	(void)state;
	struct fixture f;
	start(&f, WEFT_RAY_PER_CALL, false);
	assert_string_equal(say(&f, "not json"), "err malformed JSON");
	assert_string_equal(
		say(&f, "{\"v\": 2, \"event\": \"begin\"}"),
		"err unsupported version (this wrapper speaks v 1)");
	assert_string_equal(say(&f, "{\"v\": 1, \"event\": \"start\", "
				    "\"tid\": 1, \"seq\": 1}"),
			    "err event must be begin or end");
	assert_string_equal(say(&f, "{\"v\": 1, \"event\": \"end\"}"),
			    "err tid and seq must be numbers");
	/* Ids are cut to what a task id holds. */
	whole_task(&f, 1, "a b/c", NULL, "x\\ny", NULL, false);
	stop(&f);
	assert_true(warned(&f.worker, "4 control messages from the Ray shim "
				      "were refused (first: malformed JSON)"));
	assert_int_equal(f.ntasks, 1);
	assert_string_equal(f.tasks[0].id, "ray.01000000.a_b_c@host");
	assert_string_equal(f.tasks[0].name, "x_y");
	done(&f);
}

static void test_granularity_parse(void **state)
{
	(void)state;
	enum weft_ray_granularity g;
	assert_int_equal(weft_ray_granularity_parse("actor", &g), 0);
	assert_int_equal(g, WEFT_RAY_PER_ACTOR);
	assert_int_equal(weft_ray_granularity_parse("call", &g), 0);
	assert_int_equal(g, WEFT_RAY_PER_CALL);
	assert_int_equal(weft_ray_granularity_parse("Actor", &g), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tasks_and_worker),
		cmocka_unit_test(test_tasks_recorded_as_they_end),
		cmocka_unit_test(test_recording_fails_falls_back),
		cmocka_unit_test(test_markers_late),
		cmocka_unit_test(test_lost_marker),
		cmocka_unit_test(test_two_threads_at_once),
		cmocka_unit_test(test_actor_granularity),
		cmocka_unit_test(test_bad_messages),
		cmocka_unit_test(test_granularity_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
