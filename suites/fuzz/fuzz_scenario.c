/* libFuzzer: the scenario parser takes any bytes without crashing. */
#include <stddef.h>
#include <stdint.h>

#include "harness/scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tr_scenario *sc = NULL;

	if (tr_scenario_parse(&sc, "fuzz.scn", (const char *)data, size) == 0) {
		/* Whatever parsed must be walkable. */
		for (size_t i = 0; i < sc->n_steps; i++)
			(void)tr_step_get(&sc->steps[i], "do");
		tr_scenario_free(sc);
	}
	return 0;
}
