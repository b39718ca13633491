/*
 * test_main.h - for unit tests only: the main() of a cmocka test program,
 * written once. It lives in schema/, the part every other depends on, so
 * that a test in any folder can include it (after cmocka.h).
 */
#ifndef WEFT_TEST_MAIN_H
#define WEFT_TEST_MAIN_H

/* main(): runs the tests given (each a cmocka_unit_test(...)) as one
 * group, without group setup or teardown, and returns how many failed. A
 * macro because the tests are an array only main() can declare. */
#define WEFT_TEST_MAIN(...)                                                    \
	int main(void)                                                         \
	{                                                                      \
		const struct CMUnitTest tests[] = {__VA_ARGS__};               \
		return cmocka_run_group_tests(tests, NULL, NULL);              \
	}

#endif /* WEFT_TEST_MAIN_H */
