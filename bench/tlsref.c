/* tlsref.c — the leanest mutual-TLS SIP responder we could write, as the
 * reference for the new-connection benchmark: accept, TLS handshake
 * requiring a client certificate that chains to CA (OpenSSL's verify, no
 * session tickets, no cache), read one request up to its empty line, write
 * a fixed 200 OK, close. One connection at a time, blocking, nothing else
 * (no SIP parsing, no identity beyond the chain): what openum's cost per
 * new connection is compared with.
 *
 *   tlsref CERT KEY CA PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char ok[] = "SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: tlsref CERT KEY CA PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* a client gone before close_notify */
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET,
		                 .sin_port = htons((uint16_t)atoi(argv[4])) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1024) != 0) {
		perror("tlsref: listen");
		return 1;
	}
	for (;;) {
		int fd = accept(l, NULL, NULL);
		if (fd < 0)
			continue;
		SSL *s = SSL_new(ctx);
		SSL_set_fd(s, fd);
		if (SSL_accept(s) == 1) {
			char buf[4096];
			size_t have = 0;
			int n;
			while (have < sizeof(buf) - 1 &&
			       (n = SSL_read(s, buf + have, (int)(sizeof(buf) - 1 - have))) > 0) {
				have += (size_t)n;
				buf[have] = '\0';
				if (strstr(buf, "\r\n\r\n")) {
					SSL_write(s, ok, sizeof(ok) - 1);
					break;
				}
			}
			SSL_shutdown(s);
		}
		ERR_clear_error();
		SSL_free(s);
		close(fd);
	}
}
