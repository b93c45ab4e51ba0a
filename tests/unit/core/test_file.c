/* test_file.c — atomic writes keep mode and never leave temporaries. */
#include "ut.h"
#include "core/file.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/om-ut-file-XXXXXX");
	if (!mkdtemp(dir))
		UT_FAIL("mkdtemp");
}

static int count_entries(const char *d)
{
	int n = 0;
	DIR *dp = opendir(d);
	struct dirent *e;
	while ((e = readdir(dp)))
		if (e->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

UT_TEST(write_replace_read)
{
	char path[128], *data = NULL;
	size_t len;
	struct stat st;
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/f", dir);
	UT_EQ_INT(0, om_file_write_atomic(path, "one", 3, 0600));
	UT_EQ_INT(0, om_file_write_atomic(path, "second", 6, 0600));
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0600, st.st_mode & 0777);
	UT_EQ_INT(0, om_file_read(path, 100, &data, &len));
	UT_EQ_STR("second", data);
	om_free(data);
	UT_EQ_INT(EFBIG, om_file_read(path, 3, &data, &len));
	UT_EQ_INT(1, count_entries(dir));
	unlink(path);
	rmdir(dir);
}

UT_TEST(write_fails_cleanly)
{
	char path[128];
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/missing/f", dir);
	UT_EQ_INT(ENOENT, om_file_write_atomic(path, "x", 1, 0600));
	UT_EQ_INT(0, count_entries(dir));
	rmdir(dir);
}

UT_TEST(mkdir_p_nested)
{
	char path[128];
	struct stat st;
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	UT_EQ_INT(0, om_mkdir_p(path, 0700));
	UT_EQ_INT(0, om_mkdir_p(path, 0700));
	UT_EQ_INT(0, stat(path, &st));
	UT_TRUE(S_ISDIR(st.st_mode));
	if (system("true") == 0) {
		char cmd[160];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		UT_EQ_INT(0, system(cmd));
	}
}

UT_TEST(input_refuses_what_is_not_a_file_without_blocking)
{
	char path[128], *data = NULL;
	size_t len;
	int fd;
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/fifo", dir);
	UT_EQ_INT(0, mkfifo(path, 0600));
	/* no writer: a blocking open would hang here */
	UT_EQ_INT(ESPIPE, om_file_read(path, 100, &data, &len));
	UT_EQ_INT(ESPIPE, om_file_open_input(path, &fd, NULL));
	unlink(path);
	UT_EQ_INT(EISDIR, om_file_read(dir, 100, &data, &len));
	UT_EQ_INT(ENODEV, om_file_read("/dev/null", 100, &data, &len));
	UT_TRUE(strstr(om_file_strerror(ESPIPE), "FIFO") != NULL);
	UT_TRUE(strstr(om_file_strerror(EISDIR), "directory") != NULL);
	rmdir(dir);
}

UT_TEST(write_new_never_clobbers)
{
	char path[128], link_path[128], fifo[128], *data = NULL;
	size_t len;
	struct stat st;
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/out", dir);
	UT_EQ_INT(0, om_file_write_new(path, "one", 3, 0644, false));
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0644, st.st_mode & 0777);
	/* an existing file: only with force */
	UT_EQ_INT(EEXIST, om_file_write_new(path, "two", 3, 0644, false));
	UT_EQ_INT(0, om_file_read(path, 100, &data, &len));
	UT_EQ_STR("one", data);
	om_free(data);
	UT_EQ_INT(0, om_file_write_new(path, "two", 3, 0600, true));
	UT_EQ_INT(0, om_file_read(path, 100, &data, &len));
	UT_EQ_STR("two", data);
	om_free(data);
	/* never through a symbolic link, a FIFO, a directory or a device,
	 * even with force */
	snprintf(link_path, sizeof(link_path), "%s/link", dir);
	UT_EQ_INT(0, symlink(path, link_path));
	UT_EQ_INT(ELOOP, om_file_write_new(link_path, "x", 1, 0600, true));
	UT_EQ_INT(0, om_file_read(path, 100, &data, &len));
	UT_EQ_STR("two", data);
	om_free(data);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	UT_EQ_INT(0, mkfifo(fifo, 0600));
	UT_EQ_INT(ESPIPE, om_file_write_new(fifo, "x", 1, 0600, true));
	UT_EQ_INT(EISDIR, om_file_write_new(dir, "x", 1, 0600, true));
	UT_EQ_INT(ENODEV, om_file_write_new("/dev/null", "x", 1, 0600, true));
	UT_EQ_INT(0, lstat("/dev/null", &st));
	UT_TRUE(S_ISCHR(st.st_mode));
	/* nothing left behind: out, link, fifo */
	UT_EQ_INT(3, count_entries(dir));
	unlink(link_path);
	unlink(fifo);
	unlink(path);
	rmdir(dir);
}

UT_MAIN(UT_CASE(input_refuses_what_is_not_a_file_without_blocking),
        UT_CASE(write_new_never_clobbers), UT_CASE(write_replace_read),
        UT_CASE(write_fails_cleanly), UT_CASE(mkdir_p_nested))
