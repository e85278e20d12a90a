/* Unit tests for core/imap/cmd: string encoding and sequence sets. */
#include <criterion/criterion.h>

#include "cmd.h"

Test(cmd, placeholder_until_written)
{
	cr_assert(1);
}
