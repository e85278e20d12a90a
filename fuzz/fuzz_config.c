/*
 * libFuzzer target: the configuration loader (YAML tree, schema mapping,
 * value parsers, path expansion) on arbitrary bytes, then mailbox pattern
 * matching with every accepted account.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Deterministic expansion of "~" and of the variables in the seeds. */
	setenv("HOME", "/home/fuzz", 1);
	setenv("MAILROOT", "/data/mail", 1);
	unsetenv("XDG_STATE_HOME");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "INBOX", "inbox/Sub", "a/b/c", "[Gmail]/All Mail", "" };
	struct cfg *cfg = NULL;
	struct err e;
	size_t i, j;

	if (cfg_load_buffer("fuzz.yaml", (const char *)data, size, &cfg, &e) < 0)
		return 0;
	for (i = 0; i < cfg->n_accounts; i++)
		for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
			cfg_mailbox_selected(&cfg->accounts[i], names[j], '/');
			cfg_mailbox_selected(&cfg->accounts[i], names[j], '\0');
		}
	cfg_free(cfg);
	return 0;
}
