/* The --json writer: commas, nesting, escaping, and always-valid UTF-8. */
#include <criterion/criterion.h>

#include "json.h"

Test(json, objects_arrays_and_commas)
{
	struct json j;

	json_init(&j, 4096);
	json_object_begin(&j);
	json_key(&j, "a");
	json_uint(&j, 1);
	json_key(&j, "b");
	json_array_begin(&j);
	json_string(&j, "x");
	json_bool(&j, false);
	json_null(&j);
	json_object_begin(&j);
	json_object_end(&j);
	json_array_end(&j);
	json_key(&j, "c");
	json_int(&j, -5);
	json_object_end(&j);
	cr_assert_str_eq(json_cstr(&j), "{\"a\":1,\"b\":[\"x\",false,null,{}],\"c\":-5}");
	json_release(&j);
}

Test(json, strings_are_escaped_and_invalid_utf8_replaced)
{
	struct json j;

	json_init(&j, 4096);
	json_string(&j, "q\"b\\\n\x01 \xc3\xa9 \xff end");
	cr_assert_str_eq(json_cstr(&j), "\"q\\\"b\\\\\\u000a\\u0001 \xc3\xa9 \\ufffd end\"");
	json_release(&j);
}

Test(json, output_beyond_the_cap_is_marked_failed)
{
	struct json j;

	json_init(&j, 8);
	json_string(&j, "a long string that does not fit");
	cr_assert(j.failed);
	json_release(&j);
}

Test(json, error_object_names_code_exit_code_and_message)
{
	struct json j;
	struct err e;

	err_set(&e, ERR_AUTH, "login refused: \"%s\"", "x");
	json_init(&j, 4096);
	json_object_begin(&j);
	json_error(&j, &e);
	json_object_end(&j);
	cr_assert_str_eq(json_cstr(&j),
			 "{\"error\":{\"code\":\"auth\",\"exit_code\":3,\"message\":\"login refused: \\\"x\\\"\"}}");
	json_release(&j);
}
