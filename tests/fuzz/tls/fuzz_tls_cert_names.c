/* fuzz_tls_cert_names.c — the identity facts of a client certificate
 * (RFC 5922 §7.1: SAN URI sip:, dNSName, CN without SAN, wildcards) over
 * arbitrary DER. Input: one byte n, then n bytes of the TLS name to look
 * for, then the DER certificate. Also the names extracted once for the
 * snapshot lookup (om_tls_cert_names): canonical, rule-abiding, bounded. */
#include "tls/tls.h"
#include "core/fqdn.h"

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
		om_tls_cert_issuer(x, subj, sizeof(subj));
		/* the names extracted once (the lookup's input): each one is
		 * canonical and follows the host-name rules, whatever the DER */
		struct om_tls_names nm;
		if (om_tls_cert_names(x, &nm) == 0) {
			for (size_t i = 0; i < nm.n; i++) {
				size_t l = strlen(nm.v[i]);
				if (l == 0 || l > OM_FQDN_MAX || nm.v[i][0] == '.' ||
				    nm.v[i][l - 1] == '.' ||
				    om_fqdn_check(nm.v[i], 0, NULL, 0) != 0)
					__builtin_trap();
				for (size_t k = 0; k < l; k++)
					if (nm.v[i][k] >= 'A' && nm.v[i][k] <= 'Z')
						__builtin_trap();
			}
			/* sorted, each name once */
			for (size_t i = 1; i < nm.n; i++)
				if (strcmp(nm.v[i - 1], nm.v[i]) >= 0)
					__builtin_trap();
			om_tls_names_free(&nm);
		}
		X509_free(x);
	}
	ERR_clear_error();
	return 0;
}
