/* replay_main.c — runs a libFuzzer target over files and folders given on
 * the command line, once each, so ordinary builds replay the fuzz corpora.
 * Closes with "1 passed, 0 failed" (the replay is one test); a finding
 * crashes the process under the sanitizers. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	uint8_t *buf = malloc(1 << 20);
	size_t n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	/* Exact-size copy so reads past the input are caught. */
	uint8_t *exact = malloc(n ? n : 1);
	memcpy(exact, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 1;
}

static long run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	DIR *d = opendir(path);
	struct dirent *e;
	long total = 0;
	while (d && (e = readdir(d))) {
		char sub[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		long n = run_path(sub);
		if (n > 0)
			total += n;
	}
	if (d)
		closedir(d);
	return total;
}

int main(int argc, char **argv)
{
	long total = 0;
	for (int i = 1; i < argc; i++) {
		long n = run_path(argv[i]);
		if (n < 0) {
			fprintf(stderr, "replay: cannot read %s\n", argv[i]);
			printf("0 passed, 1 failed\n");
			return 1;
		}
		total += n;
	}
	printf("ok   replay of %ld inputs\n1 passed, 0 failed\n", total);
	return 0;
}
