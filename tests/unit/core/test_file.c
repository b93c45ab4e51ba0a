/* test_file.c — atomic writes keep mode and never leave temporaries. */
#include "ut.h"
#include "core/file.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
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

/* om_file_write_new never replaces: a file, a dangling symbolic link. */
UT_TEST(write_new_never_replaces)
{
	char path[128], link_path[128], target[128], got[128], *data = NULL;
	size_t len;
	struct stat st;
	mkdir_tmp();
	snprintf(path, sizeof(path), "%s/f", dir);
	UT_EQ_INT(0, om_file_write_new(path, "one", 3, 0600));
	UT_EQ_INT(EEXIST, om_file_write_new(path, "two", 3, 0600));
	UT_EQ_INT(0, om_file_read(path, 100, &data, &len));
	UT_EQ_STR("one", data);
	om_free(data);
	UT_EQ_INT(0, stat(path, &st));
	UT_EQ_INT(0600, st.st_mode & 0777);
	snprintf(link_path, sizeof(link_path), "%s/l", dir);
	snprintf(target, sizeof(target), "%s/nowhere", dir);
	UT_EQ_INT(0, symlink(target, link_path));
	UT_EQ_INT(EEXIST, om_file_write_new(link_path, "x", 1, 0600));
	ssize_t n = readlink(link_path, got, sizeof(got) - 1);
	UT_TRUE(n > 0);
	got[n > 0 ? n : 0] = '\0';
	UT_EQ_STR(target, got);
	UT_EQ_INT(-1, lstat(target, &st));
	UT_EQ_INT(2, count_entries(dir)); /* no temporary file left */
	unlink(link_path);
	unlink(path);
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

UT_MAIN(UT_CASE(write_replace_read), UT_CASE(write_fails_cleanly),
        UT_CASE(write_new_never_replaces), UT_CASE(mkdir_p_nested))
