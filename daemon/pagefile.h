/* SPDX-License-Identifier: MIT */
/*
 * pagefile.h — the daemon's page files and its generation counter, under the
 * run directory.
 */
#ifndef USBTSD_PAGEFILE_H
#define USBTSD_PAGEFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "page.h"

/* The run directory: created root-owned 0755 if missing; refused if it is
 * owned by another user or writable by others.  Also opens the generation
 * counter (RUN_DIR/generation), which outlives a daemon restart. */
bool pagefile_init(const char *run_dir);

/*
 * The page file RUN_DIR/<name>.page for a controller, mapped read-write.
 * An existing file of this layout, for the same controller instance and not
 * marked gone, is taken over as it is (its model stays for clients to read
 * until the tracker publishes; *reused says so).  Otherwise a new file is
 * written whole and renamed into place: a live page is never truncated.
 */
struct usbts_page *pagefile_open(const char *name, const char *controller, uint64_t instance, bool *reused);

/* The page's file name (for clients), e.g. "0000:00:14.0.page". */
void pagefile_name(const char *name, char *out, size_t outlen);

/* Next generation ID for the whole machine: never repeated within a boot. */
uint32_t pagefile_next_generation(void);

/* Marks every page not live (SIGTERM): their models stay. */
void pagefile_all_not_live(void);

#endif
