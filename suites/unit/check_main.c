/* Runs every Check suite of suites/unit/ (the list is generated at build). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define SUITE(name) Suite *name(void);
#include "suites.inc"
#undef SUITE

int main(void)
{
	SRunner *runner = srunner_create(NULL);
	int run, failed;

#define SUITE(name) srunner_add_suite(runner, name());
#include "suites.inc"
#undef SUITE

	srunner_run_all(runner, CK_NORMAL);
	run = srunner_ntests_run(runner);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	printf("unit: %d passed, %d failed\n", run - failed, failed);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
