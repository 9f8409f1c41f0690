/*
 * fuzz.h - what every libFuzzer target in tests/fuzz shares: the entry
 * point's prototype and CHECK, which reports a broken invariant in the
 * words run.sh looks for ("invariant failed") and aborts.
 */
#ifndef MR_FUZZ_H
#define MR_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x) do {							\
	if (!(x)) {							\
		fprintf(stderr, "invariant failed: %s\n", #x);		\
		abort();						\
	}								\
} while (0)

#endif
