/* test_pin_rules.c — R14's PIN rules: each pattern refused with a message
 * naming its rule, and PINs without a pattern accepted. */
#include "ut.h"
#include "directory/directory.h"

#include <errno.h>

struct pin_case {
	const char *pin, *ext, *pilot;
	const char *rule; /* NULL: accepted; else a piece of the message */
};

static const struct pin_case cases[] = {
	/* length and alphabet */
	{ "123", "4711", NULL, "4 to 24 digits" },
	{ "1234567890123456789012345", "4711", NULL, "4 to 24 digits" },
	{ "12a4", "4711", NULL, "digits only" },
	{ "", NULL, NULL, "4 to 24 digits" },
	/* the extension: whole, reversed, its end, a part, contained */
	{ "4711", "4711", NULL, "is the mailbox's extension" },
	{ "1174", "4711", NULL, "extension backwards" },
	{ "1234", "5551234", NULL, "end of the mailbox's extension" },
	{ "6028", "5560289", NULL, "a part of the mailbox's extension" },
	{ "47114711", "4711", NULL, "contains the mailbox's extension" },
	{ "047119", "4711", NULL, "contains the mailbox's extension" },
	{ "90471", "4711", NULL, NULL }, /* not the whole extension */
	{ "5093", "509", NULL, NULL },   /* a 3-digit extension is not searched for */
	/* the dial plan's pilot number */
	{ "5080", "4711", "+4930125080", "end of the dial plan's pilot number" },
	{ "4930125080", "4711", "+4930125080", "is the dial plan's pilot number" },
	{ "06125080", "4711", "6125080", "contains the dial plan's pilot number" },
	{ "30125", "4711", "+4930125080", "a part of the dial plan's pilot number" },
	/* repeats */
	{ "1111", NULL, NULL, "one digit repeated" },
	{ "000000", NULL, NULL, "one digit repeated" },
	{ "1212", NULL, NULL, "group of digits repeated" },
	{ "123123", NULL, NULL, "group of digits repeated" },
	{ "12121", NULL, NULL, "group of digits repeated" },
	{ "90459045", NULL, NULL, "group of digits repeated" },
	{ "1122", NULL, NULL, "every digit doubled" },
	{ "112233", NULL, NULL, "every digit doubled" },
	{ "99005577", NULL, NULL, "every digit doubled" },
	{ "11223", NULL, NULL, NULL },  /* odd: one digit alone */
	{ "112234", NULL, NULL, NULL }, /* one pair broken */
	/* sequences */
	{ "1234", NULL, NULL, "in sequence" },
	{ "4321", NULL, NULL, "in sequence" },
	{ "123456", NULL, NULL, "in sequence" },
	{ "0123456789", NULL, NULL, "in sequence" },
	{ "7890", NULL, NULL, "in sequence" },
	{ "8901", NULL, NULL, "in sequence" },
	{ "9876", NULL, NULL, "in sequence" },
	{ "1098", NULL, NULL, "in sequence" },
	{ "2468", NULL, NULL, "in sequence" },
	{ "1357", NULL, NULL, "in sequence" },
	{ "8642", NULL, NULL, "in sequence" },
	/* keypad lines */
	{ "2580", NULL, NULL, "keypad" },
	{ "0852", NULL, NULL, "keypad" },
	{ "147258", NULL, NULL, "keypad" },
	{ "369147", NULL, NULL, "keypad" },
	{ "159357", NULL, NULL, "keypad" },
	{ "159753", NULL, NULL, "keypad" },
	{ "14789", NULL, NULL, "keypad" },
	{ "1478963", NULL, NULL, "keypad" },
	{ "123789", NULL, NULL, "keypad" },
	{ "951753", NULL, NULL, "keypad" },
	{ "741852963", NULL, NULL, "keypad" },
	/* no pattern */
	{ "4711", "1001", NULL, NULL },
	{ "483920", "1001", "+4930125080", NULL },
	{ "1478", NULL, NULL, NULL }, /* a column and one key more */
	{ "1397", NULL, NULL, NULL }, /* the corners: no line */
	{ "2470", NULL, NULL, NULL },
	{ "902183", NULL, NULL, NULL },
	{ "1245", NULL, NULL, NULL },
	{ "97310", NULL, NULL, NULL },
};

UT_TEST(each_rule_named)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pin_case *c = &cases[i];
		struct om_dir_err e = { "" };
		int rc = om_dir_pin_rules_check(c->pin, c->ext, c->pilot, &e);
		if (!c->rule && rc != 0)
			UT_FAIL("PIN %s (extension %s) refused: %s", c->pin, c->ext ? c->ext : "-",
			        e.msg);
		if (c->rule && rc != EINVAL)
			UT_FAIL("PIN %s (extension %s, pilot %s) accepted, expected \"%s\"", c->pin,
			        c->ext ? c->ext : "-", c->pilot ? c->pilot : "-", c->rule);
		if (c->rule && !strstr(e.msg, c->rule))
			UT_FAIL("PIN %s: message \"%s\" does not name \"%s\"", c->pin, e.msg,
			        c->rule);
	}
}

/* The message names the rule, never the PIN. */
UT_TEST(message_never_holds_the_pin)
{
	struct om_dir_err e = { "" };
	UT_EQ_INT(EINVAL, om_dir_pin_rules_check("31415926", "31415926", NULL, &e));
	UT_TRUE(strstr(e.msg, "31415926") == NULL);
	UT_EQ_INT(EINVAL, om_dir_pin_rules_check("2580", NULL, NULL, &e));
	UT_TRUE(strstr(e.msg, "2580") != NULL); /* the example in the message */
	UT_EQ_INT(EINVAL, om_dir_pin_rules_check("0852", NULL, NULL, &e));
	UT_TRUE(strstr(e.msg, "0852") == NULL);
}

/* Every 4-digit PIN: the rules leave most of them usable (a policy that
 * refuses too much pushes people to write PINs down). */
UT_TEST(most_four_digit_pins_remain)
{
	int refused = 0;
	char pin[5];
	for (int v = 0; v < 10000; v++) {
		struct om_dir_err e;
		snprintf(pin, sizeof(pin), "%04d", v);
		if (om_dir_pin_rules_check(pin, "4711", NULL, &e))
			refused++;
	}
	/* 10 one digit, 90 abab, 90 aabb, 20 steps of +-1 (with 0 after 9),
	 * 8 of +-2, 2580 and 0852, the extension 4711 and 1174 */
	UT_EQ_INT(10 + 90 + 90 + 20 + 8 + 2 + 2, refused);
}

UT_MAIN(UT_CASE(each_rule_named), UT_CASE(message_never_holds_the_pin),
        UT_CASE(most_four_digit_pins_remain))
