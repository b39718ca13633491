/*
 * thread.c - threads of weft's own in a process that runs a workload
 * (the Ray wrapper's serving, recording and shipping threads, the
 * spool's parallel writers). weft's main thread handles SIGTERM, SIGHUP,
 * SIGINT and SIGQUIT (it passes them on to the workload); a thread that
 * took one instead would swallow it, so they start with them blocked.
 */
#include <signal.h>

#include <weft/wrap.h>

int weft_wrap_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc == 0 ? 0 : -1;
}
