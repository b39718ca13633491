/*
 * agent_access_test.c - the agent's registration rule (agent_access.c)
 * without a second user or a Yama kernel: each of the kernel's ptrace
 * rules refuses on its own and CAP_SYS_PTRACE lifts the ones it lifts in
 * the kernel; /proc of this process reads as what getuid and friends
 * say, and a change of credentials shows.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ebpf_internal.h"
#include "../../schema/test_main.h"

static wb_creds user(uint32_t uid, uint32_t gid)
{
	wb_creds c = {.pid = 100, .dumpable = true};
	for (int i = 0; i < 4; i++) {
		c.uid[i] = uid;
		c.gid[i] = gid;
	}
	return c;
}

static int check(const wb_creds *caller, const wb_creds *target, int scope,
		 bool ancestor, const char *reason)
{
	char why[64] = "";
	int rc = wb_may_ptrace(caller, target, scope, ancestor, why,
			       sizeof(why));
	if (reason)
		assert_non_null(strstr(why, reason));
	return rc;
}

static void test_ids(void **state)
{
	(void)state;
	wb_creds me = user(1000, 1000), t = user(1000, 1000);
	assert_int_equal(check(&me, &t, 0, false, NULL), 0);
	for (int i = 0; i < 3; i++) {
		t = user(1000, 1000);
		t.uid[i] = 0; /* a set-user-ID program, any of its uids */
		assert_int_equal(check(&me, &t, 0, false, "uid 1000"), -EPERM);
		t = user(1000, 1000);
		t.gid[i] = 65534; /* a set-group-ID one (ssh-agent) */
		assert_int_equal(check(&me, &t, 0, false, "gid 1000"), -EPERM);
	}
	/* The caller's real ids count, not its effective ones. */
	me.uid[1] = 0;
	t = user(0, 1000);
	assert_int_equal(check(&me, &t, 0, false, NULL), -EPERM);
}

static void test_dumpable_and_caps(void **state)
{
	(void)state;
	wb_creds me = user(1000, 1000), t = user(1000, 1000);
	t.dumpable = false;
	assert_int_equal(check(&me, &t, 0, false, "dumpable"), -EPERM);
	t = user(1000, 1000);
	t.cap_prm = 1ull << WB_CAP_BPF; /* more than the caller holds */
	assert_int_equal(check(&me, &t, 0, false, "capabilities"), -EPERM);
	me.cap_prm = t.cap_prm;
	assert_int_equal(check(&me, &t, 0, false, NULL), 0);

	wb_creds admin = user(1000, 1000), root = user(0, 0);
	admin.cap_eff = 1ull << WB_CAP_SYS_PTRACE;
	root.dumpable = false;
	root.cap_prm = ~0ull;
	assert_int_equal(check(&admin, &root, 0, false, NULL), 0);
}

static void test_yama(void **state)
{
	(void)state;
	wb_creds me = user(1000, 1000), t = user(1000, 1000);
	assert_int_equal(check(&me, &t, WB_YAMA_RELATIONAL, true, NULL), 0);
	assert_int_equal(
		check(&me, &t, WB_YAMA_RELATIONAL, false, "descendant"),
		-EPERM);
	assert_int_equal(check(&me, &t, WB_YAMA_ADMIN, true, "CAP_SYS_PTRACE"),
			 -EPERM);
	wb_creds admin = me;
	admin.cap_eff = 1ull << WB_CAP_SYS_PTRACE;
	assert_int_equal(check(&admin, &t, WB_YAMA_RELATIONAL, false, NULL), 0);
	assert_int_equal(check(&admin, &t, WB_YAMA_ADMIN, false, NULL), 0);
	assert_int_equal(
		check(&admin, &t, WB_YAMA_NO_ATTACH, true, "no process"),
		-EPERM);
}

static void test_read_self(void **state)
{
	(void)state;
	wb_creds c, again;
	assert_int_equal(wb_creds_read(getpid(), &c), 0);
	assert_int_equal(c.uid[0], getuid());
	assert_int_equal(c.uid[1], geteuid());
	assert_int_equal(c.gid[0], getgid());
	assert_int_equal(c.ppid, getppid());
	assert_true(c.dumpable);
	assert_false(c.ended);
	assert_true(c.start > 0);
	assert_true(wb_is_ancestor(getppid(), getpid()));
	assert_false(wb_is_ancestor(getpid(), getppid()));
	assert_int_equal(wb_creds_read(getpid(), &again), 0);
	assert_true(wb_creds_same(&c, &again));
	again.gid[2]++;
	assert_false(wb_creds_same(&c, &again));
	again = c;
	again.start++; /* the pid reused */
	assert_false(wb_creds_same(&c, &again));
	assert_int_equal(wb_creds_read(0, &c), -ESRCH);
}

WEFT_TEST_MAIN(cmocka_unit_test(test_ids),
	       cmocka_unit_test(test_dumpable_and_caps),
	       cmocka_unit_test(test_yama), cmocka_unit_test(test_read_self))
