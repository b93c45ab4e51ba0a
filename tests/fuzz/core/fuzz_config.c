/* fuzz_config.c — openum.conf parser: any bytes give a configuration or an
 * error naming file:line, never a crash or a leak. */
#include "core/config.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct om_config *c = NULL;
	char err[256];
	if (om_config_parse((const char *)data, size, "fuzz.conf", &c, err, sizeof(err)) == 0) {
		char s[512];
		om_config_listen_str(c->sip_tcp, c->n_sip_tcp, s, sizeof(s));
		om_config_free(c);
	} else if (!memchr(err, ':', strnlen(err, sizeof(err)))) {
		__builtin_trap(); /* every error names its place */
	}
	return 0;
}
