#include <stdio.h>
#include <string.h>

#include "version.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("ferry %s\n", ferry_version());
		return 0;
	}
	fprintf(stderr, "usage: ferry [-c FILE] [-v|-q] [--json] COMMAND [ARGS]\n");
	return 2;
}
