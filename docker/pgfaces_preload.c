/*
 * pgfaces_preload: starts the embedded Python in the postmaster, so that PL/Python backends fork warm.
 *
 * PostgreSQL 15's plpython3 starts Python lazily, in each backend's first PL/Python call, so listing it in
 * shared_preload_libraries does not help. Listed there ahead of plpython3, this library calls Py_Initialize()
 * in the postmaster; Python's start-up imports sitecustomize from PYTHONPATH (the server's python dir), which
 * imports pgfaces' libraries and loads its models (plpython/pgfaces/warmup.py). A backend's PLy_initialize then
 * finds Python initialised (Py_Initialize is a no-op) and registers its plpy module as usual.
 *
 * Built and installed by docker/install-server.sh; used by `invoke up` (tasks.SPEED_SETTINGS).
 */
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"

#include <Python.h>

PG_MODULE_MAGIC;

void _PG_init(void);

void
_PG_init(void)
{
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
