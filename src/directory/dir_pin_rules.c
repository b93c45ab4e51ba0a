/* dir_pin_rules.c — which PINs are too easy to guess (R14: "no common
 * patterns: sequences, repeats, the extension itself").
 *
 * A PIN is 4 to 24 decimal digits. It is refused, with a message naming the
 * rule (never the PIN), when it is:
 *
 *   extension   the mailbox's own number: the extension itself, reversed,
 *               a part of it (its end: 1234 of 5551234), or a PIN that
 *               contains an extension of 4 or more digits (47114711, 04711);
 *   pilot       the dial plan's pilot number (the number the mailbox is
 *               reached by), a part of it, or a PIN containing it;
 *   repeat      one digit repeated (1111), or a group repeated, whole or
 *               in part (1212, 123123, 12121), or every digit doubled
 *               (1122, 112233);
 *   sequence    every digit one more than the one before, or one less,
 *               0 following 9 and 9 following 0 (1234, 4321, 7890, 123456),
 *               or every other digit (2468, 1357, 8642);
 *   keypad      straight lines walked on the telephone keypad
 *
 *                   1 2 3
 *                   4 5 6        rows, columns (2580, 0852), diagonals
 *                   7 8 9        (159, 357); a PIN made of such lines of
 *                     0          3 keys or more, one after the other or
 *                                turning on a shared key (147369, 14789,
 *                                159753).
 *
 * The rules are checked in that order; the first that matches is named. */
#include "directory/dir_private.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { PIN_MIN = 4, PIN_MAX = 24 };

static bool repeated_group(const char *pin, size_t n, size_t *period)
{
	for (size_t p = 1; p <= n / 2; p++) {
		size_t i;
		for (i = p; i < n && pin[i] == pin[i - p]; i++)
			;
		if (i == n) {
			*period = p;
			return true;
		}
	}
	return false;
}

/* Pairs of one digit each: 1122, 112233 (1111 is a repeat already). */
static bool doubled(const char *pin, size_t n)
{
	if (n % 2)
		return false;
	for (size_t i = 0; i < n; i += 2)
		if (pin[i] != pin[i + 1])
			return false;
	return true;
}

/* Steps of +1 or -1 (modulo 10), or +2 or -2 (without wrapping). */
static bool sequence(const char *pin, size_t n)
{
	static const int steps[] = { 1, 9, 2, -2 };
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		size_t i;
		for (i = 1; i < n; i++) {
			int a = pin[i - 1] - '0', b = pin[i] - '0';
			if (steps[s] == 1 || steps[s] == 9 ? b != (a + steps[s]) % 10
			                                   : b != a + steps[s])
				break;
		}
		if (i == n)
			return true;
	}
	return false;
}

/* Keypad row and column of each digit. */
static const signed char key_row[10] = { 3, 0, 0, 0, 1, 1, 1, 2, 2, 2 };
static const signed char key_col[10] = { 1, 0, 1, 2, 0, 1, 2, 0, 1, 2 };

/* pin[i..j] (j >= i + 2) walks one straight keypad line, one key per step. */
static bool straight(const char *pin, size_t i, size_t j)
{
	int dr = key_row[pin[i + 1] - '0'] - key_row[pin[i] - '0'];
	int dc = key_col[pin[i + 1] - '0'] - key_col[pin[i] - '0'];
	if ((dr == 0 && dc == 0) || abs(dr) > 1 || abs(dc) > 1)
		return false;
	for (size_t k = i + 1; k < j; k++)
		if (key_row[pin[k + 1] - '0'] - key_row[pin[k] - '0'] != dr ||
		    key_col[pin[k + 1] - '0'] - key_col[pin[k] - '0'] != dc)
			return false;
	return true;
}

/* The whole PIN is lines of 3+ keys; a line starts on the last key of the
 * one before (a turn) or on the next key (a new line). */
static bool keypad_lines(const char *pin, size_t n)
{
	bool end_ok[PIN_MAX] = { false }; /* a line may end at index i */
	for (size_t j = 2; j < n; j++) {
		for (size_t i = 0; i + 2 <= j && !end_ok[j]; i++) {
			bool start_ok = i == 0 || end_ok[i] || end_ok[i - 1];
			if (start_ok && straight(pin, i, j))
				end_ok[j] = true;
		}
	}
	return end_ok[n - 1];
}

static void reverse(const char *s, char *out, size_t outlen)
{
	size_t n = strlen(s);
	if (n >= outlen)
		n = outlen - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = s[n - 1 - i];
	out[n] = '\0';
}

/* The PIN against one number: 0, or the rule's explanation. */
static const char *number_rule(const char *pin, size_t n, const char *num, const char *what_is,
                               const char *what_rev, const char *what_end, const char *what_part,
                               const char *what_contains)
{
	char rev[64];
	size_t len = strlen(num);
	const char *at;
	if (!len)
		return NULL;
	if (!strcmp(pin, num))
		return what_is;
	reverse(num, rev, sizeof(rev));
	if (len == n && !strcmp(pin, rev))
		return what_rev;
	if (n < len && (at = strstr(num, pin)) != NULL)
		return at + n == num + len ? what_end : what_part;
	if (len >= PIN_MIN && strstr(pin, num))
		return what_contains;
	return NULL;
}

int om_dir_pin_rules_check(const char *pin, const char *extension, const char *pilot,
                           struct om_dir_err *err)
{
	size_t n = strlen(pin), period = 0;
	const char *why;
	if (n < PIN_MIN || n > PIN_MAX) {
		om_dir_seterr(err, "a PIN has %d to %d digits", PIN_MIN, PIN_MAX);
		return EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (pin[i] < '0' || pin[i] > '9') {
			om_dir_seterr(err, "a PIN has digits only");
			return EINVAL;
		}
	why = number_rule(
	    pin, n, extension ? extension : "", "it is the mailbox's extension",
	    "it is the mailbox's extension backwards", "it is the end of the mailbox's extension",
	    "it is a part of the mailbox's extension", "it contains the mailbox's extension");
	if (!why && pilot) {
		if (pilot[0] == '+')
			pilot++;
		why = number_rule(pin, n, pilot, "it is the dial plan's pilot number",
		                  "it is the dial plan's pilot number backwards",
		                  "it is the end of the dial plan's pilot number",
		                  "it is a part of the dial plan's pilot number",
		                  "it contains the dial plan's pilot number");
	}
	if (!why && repeated_group(pin, n, &period))
		why = period == 1 ? "one digit repeated (like 1111)"
		                  : "a group of digits repeated (like 1212 or 123123)";
	if (!why && doubled(pin, n))
		why = "every digit doubled (like 1122 or 112233)";
	if (!why && sequence(pin, n))
		why = "digits in sequence (like 1234, 4321, 7890 or 2468)";
	if (!why && keypad_lines(pin, n))
		why = "straight lines on the keypad (rows, columns like 2580, diagonals like 159)";
	if (why) {
		om_dir_seterr(err, "the PIN is too easy to guess: %s; choose one without a pattern",
		              why);
		return EINVAL;
	}
	return 0;
}
