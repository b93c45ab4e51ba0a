/* fuzz_dir_values.c — the directory's value checks (addresses, FQDNs,
 * e-mail, display names, extensions, enums) on any bytes: no crash, and
 * an accepted address parses again to the same binary form (canonical
 * text is stable, IPv4-mapped normalised). */
#include "directory/directory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512];
	struct om_dir_host h, h2;
	enum om_dir_security sec;
	bool b;
	if (size >= sizeof(s))
		size = sizeof(s) - 1;
	memcpy(s, data, size);
	s[size] = 0;
	if (om_dir_host_parse(s, &h) == 0) {
		if (om_dir_host_parse(h.name, &h2) != 0 || h2.is_ip != h.is_ip ||
		    strcmp(h.name, h2.name) != 0 || (h.is_ip && memcmp(h.ip, h2.ip, 16) != 0))
			__builtin_trap();
		if (!h.is_ip && !om_dir_fqdn_valid(h.name))
			__builtin_trap();
	}
	if (om_dir_fqdn_valid(s) && strlen(s) > 254)
		__builtin_trap();
	if (om_dir_email_valid(s) && !strchr(s, '@'))
		__builtin_trap();
	if (om_dir_display_valid(s) && (strchr(s, '\n') || strchr(s, '\r')))
		__builtin_trap();
	if (om_dir_extension_valid(s) && strspn(s, "0123456789") != strlen(s))
		__builtin_trap();
	(void)om_dir_name_valid(s);
	(void)om_dir_pilot_valid(s);
	(void)om_dir_thumbprint_valid(s);
	(void)om_dir_security_parse(s, &sec);
	(void)om_dir_bool_parse(s, &b);
	return 0;
}
