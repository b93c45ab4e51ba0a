/* fuzz_cert_bundle.c — what `openum cert import FILE` parses from a file an
 * administrator was handed: PEM (certificates, keys, CRLs), DER, PKCS#12.
 * The first byte picks the password ("" / "pw" / none) so encrypted inputs
 * are tried both ways. */
#include "cert/cert.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const pw[] = { NULL, "", "pw" };
	struct om_cert_bundle b;
	if (size < 1)
		return 0;
	const char *p = pw[data[0] % 3];
	if (om_cert_bundle_parse(data + 1, size - 1, p, &b) == 0) {
		(void)om_cert_has_pem_key(data + 1, size - 1);
		om_cert_bundle_free(&b);
	}
	return 0;
}
