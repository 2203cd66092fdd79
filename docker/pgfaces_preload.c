/*
 * pgfaces_preload: the pgfaces server library, listed in shared_preload_libraries (pgfaces/serverconf.py).
 *
 * 1. It defines the pgfaces.* settings. The limits (README, "Limits") are integers that only superusers may set
 *    (PGC_SUSET), with bounds: a log-in role can neither SET them nor give them to itself with ALTER ROLE, so the
 *    values an administrator chose hold against every role. pgfaces.defer (on: an INSERT queues its photo) is the
 *    user's to choose per session; pgfaces.analyse = immediate | deferred is its first form, kept working (it needs
 *    quotes in SET: ANALYSE is a reserved word). pgfaces.defer wins once set; until then it shows (and the SQL
 *    reads) what pgfaces.analyse says.
 *    The SQL function pgfaces_limits() reads the limits; without this library (a managed service) they are
 *    placeholders, and there a value may only lower the default (sql/idempotent/001-profiles.sql).
 *    pgfaces.originals_dirs and pgfaces.originals_urls (superuser-only too) say which files and URLs a photo's uri
 *    may name (README, "Originals outside the database"); empty, the default, allows none.
 *    The defaults are those of pgfaces.records.Limits and pgfaces_limits(); a test compares them.
 *
 * 2. It starts the embedded Python in the postmaster, so that PL/Python backends fork warm. PostgreSQL 15's
 *    plpython3 starts Python lazily, in each backend's first PL/Python call, so listing it in
 *    shared_preload_libraries does not help. Listed there ahead of plpython3, this library calls Py_Initialize()
 *    in the postmaster; Python's start-up imports sitecustomize from PYTHONPATH (the server's python dir), which
 *    imports pgfaces' libraries and loads its models (plpython/pgfaces/warmup.py). A backend's PLy_initialize then
 *    finds Python initialised (Py_Initialize is a no-op) and registers its plpy module as usual.
 *
 * Built and installed by docker/install-server.sh.
 */
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include <limits.h>
#include <Python.h>

PG_MODULE_MAGIC;

void _PG_init(void);

static int max_image_bytes = 64 * 1024 * 1024;
static int max_pixels = 100000000;
static int max_faces = 500;
static int max_results = 10000;
static int analyse = 0;
static char *originals_dirs = NULL;
static char *originals_urls = NULL;
static int defer = -1;

static const struct config_enum_entry analyse_options[] = {
	{"immediate", 0, false},
	{"deferred", 1, false},
	{NULL, 0, false}
};

/*
 * A list setting's entries: comma-separated, spaces around them ignored. Each must start with one of `prefixes`
 * (NULL-terminated) followed by at least `more` characters, and hold no control character; an empty list allows
 * nothing.
 */
static bool
check_list(char **newval, const char *what, const char *const *prefixes, size_t more)
{
	const char *p = *newval ? *newval : "";

	while (*p)
	{
		const char *start, *end;
		bool		ok = false;

		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && end[-1] == ' ')
			end--;
		for (const char *c = start; c < end; c++)
			if ((unsigned char) *c < 32 || *c == 127)
			{
				GUC_check_errdetail("%s must not hold control characters.", what);
				return false;
			}
		for (int i = 0; prefixes[i]; i++)
			if ((size_t) (end - start) >= strlen(prefixes[i]) + more && strncmp(start, prefixes[i], strlen(prefixes[i])) == 0)
				ok = true;
		if (!ok)
		{
			GUC_check_errdetail("%s: \"%.*s\" is not one (give them comma-separated).", what, (int) (end - start), start);
			return false;
		}
	}
	return true;
}

static bool
check_originals_dirs(char **newval, void **extra, GucSource source)
{
	static const char *const prefixes[] = {"/", NULL};

	return check_list(newval, "each entry must be an absolute folder path", prefixes, 0);
}

static bool
check_originals_urls(char **newval, void **extra, GucSource source)
{
	static const char *const prefixes[] = {"http://", "https://", "s3://", NULL};

	return check_list(newval, "each entry must be a URL prefix (http://, https:// or s3://) with a host", prefixes, 1);
}

/* A boolean's spellings, and -1 (hidden): not set, so pgfaces.analyse decides. */
static const struct config_enum_entry defer_options[] = {
	{"on", 1, false},
	{"off", 0, false},
	{"true", 1, true},
	{"false", 0, true},
	{"yes", 1, true},
	{"no", 0, true},
	{"1", 1, true},
	{"0", 0, true},
	{"unset", -1, true},
	{NULL, 0, false}
};

/* SHOW pgfaces.defer and current_setting() give the mode in force: its own value, else pgfaces.analyse's. */
static const char *
show_defer(void)
{
	return (defer < 0 ? analyse : defer) == 1 ? "on" : "off";
}

static void
define_settings(void)
{
	DefineCustomIntVariable("pgfaces.max_image_bytes",
							"Larger images are refused before decoding.",
							"Only superusers may set it.",
							&max_image_bytes, 64 * 1024 * 1024, 1, 1024 * 1024 * 1024,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgfaces.max_pixels",
							"Images of more pixels (width x height from the header) are refused before decoding.",
							"Only superusers may set it.",
							&max_pixels, 100000000, 1, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgfaces.max_faces",
							"A photo with more faces is refused, whole.",
							"Only superusers may set it.",
							&max_faces, 500, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pgfaces.max_results",
							"Upper bound of n in every search function.",
							"Only superusers may set it.",
							&max_results, 10000, 1, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("pgfaces.analyse",
							 "immediate: an INSERT analyses its photo; deferred: it queues the photo for workers.",
							 NULL,
							 &analyse, 0, analyse_options,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("pgfaces.originals_dirs",
							   "Folders (comma-separated absolute paths) whose files a photo's uri may name.",
							   "Only superusers may set it. Symbolic links are resolved before the check.",
							   &originals_dirs, "",
							   PGC_SUSET, 0, check_originals_dirs, NULL, NULL);
	DefineCustomStringVariable("pgfaces.originals_urls",
							   "URL prefixes (comma-separated) that a photo's uri may start with; client workers fetch them.",
							   "Only superusers may set it.",
							   &originals_urls, "",
							   PGC_SUSET, 0, check_originals_urls, NULL, NULL);
	DefineCustomEnumVariable("pgfaces.defer",
							 "on: an INSERT stores its photo and queues it for workers; off: it analyses the photo.",
							 "Until set, pgfaces.analyse (its former form) decides.",
							 &defer, -1, defer_options,
							 PGC_USERSET, 0, NULL, NULL, show_defer);
	MarkGUCPrefixReserved("pgfaces");
}

void
_PG_init(void)
{
	define_settings();
	if (!process_shared_preload_libraries_in_progress)
		return;
#if PY_VERSION_HEX >= 0x030C0000
	/* Python 3.12+ refuses PyImport_AppendInittab after Py_Initialize, which PL/Python's start-up does. */
	return;
#endif
	if (!Py_IsInitialized())
		Py_Initialize();
	if (PyErr_Occurred())
	{
		PyErr_Print();
		PyErr_Clear();
	}
}
