/* fuzz_tls_cert_names.c — the identity facts of a client certificate
 * (RFC 5922 §7.1: SAN URI sip:, dNSName, CN without SAN, wildcards) over
 * arbitrary DER. Input: one byte n, then n bytes of the TLS name to look
 * for, then the DER certificate. */
#include "tls/tls.h"

#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256];
	if (size < 1)
		return 0;
	size_t n = data[0];
	if (n > size - 1)
		n = size - 1;
	memcpy(name, data + 1, n);
	name[n] = '\0';
	const unsigned char *p = data + 1 + n;
	X509 *x = d2i_X509(NULL, &p, (long)(size - 1 - n));
	if (x) {
		char subj[512];
		(void)om_tls_cert_has_name(x, name);
		(void)om_tls_cert_has_name(x, "gw.example.com");
		(void)om_tls_cert_has_wildcard(x);
		(void)om_tls_cert_eku(x);
		om_tls_cert_subject(x, subj, sizeof(subj));
		X509_free(x);
	}
	ERR_clear_error();
	return 0;
}
