/*
 * fuzz_conf.c - libFuzzer target for mailroot.conf(5) (conf_lex.c,
 * conf_parse.c, conf_print.c).
 *
 * The input is a configuration file.  Beyond "no crash", a configuration
 * that parses must keep the promise of conf.h: mr_config_print writes
 * text that parses again, and printing that gives the same text, so
 * "mailrootd -n" shows what the daemons will really run.
 */
#include "config.h"

#include "fuzz.h"
#include "conf.h"

static FILE	*devnull;

/* The effective configuration as text, malloc'd. */
static char *
print(const struct mr_config *cf, size_t *lenp)
{
	char *text = NULL;
	FILE *f;

	f = open_memstream(&text, lenp);
	CHECK(f != NULL);
	mr_config_print(cf, f);
	CHECK(fclose(f) == 0);
	return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mr_config *cf, *cf2;
	char *text1, *text2;
	size_t len1, len2;

	if (devnull == NULL)
		CHECK((devnull = fopen("/dev/null", "w")) != NULL);

	cf = mr_config_parse("fuzz.conf", (const char *)data, size, devnull);
	if (cf == NULL)
		return 0;
	text1 = print(cf, &len1);
	cf2 = mr_config_parse("printed.conf", text1, len1, devnull);
	if (cf2 == NULL) {
		/* show why before failing */
		fprintf(stderr, "--- printed configuration ---\n%s---\n",
		    text1);
		mr_config_free(mr_config_parse("printed.conf", text1, len1,
		    stderr));
	}
	CHECK(cf2 != NULL);
	text2 = print(cf2, &len2);
	if (len1 != len2 || memcmp(text1, text2, len1) != 0)
		fprintf(stderr, "--- first print ---\n%s--- second print ---\n"
		    "%s---\n", text1, text2);
	CHECK(len1 == len2 && memcmp(text1, text2, len1) == 0);

	free(text1);
	free(text2);
	mr_config_free(cf);
	mr_config_free(cf2);
	return 0;
}
