/* SPDX-License-Identifier: MIT */
/*
 * capbset: run a program as root with only the named capabilities in its
 * bounding set, as systemd's CapabilityBoundingSet= does, so the daemon's
 * QEMU boot runs usbtimesyncd with exactly its unit's capabilities.
 *
 *   capbset "CAP_A CAP_B ..." PROG [ARGS...]
 *
 * Root's execve gives the new program permitted = bounding set (its
 * inheritable set is empty), so dropping the rest here is enough.  The
 * names are those of daemon/usbtimesyncd.service; an unknown name fails.
 */
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static const struct {
    const char *name;
    int cap;
} known[] = {
    {"CAP_CHOWN", CAP_CHOWN},
    {"CAP_DAC_OVERRIDE", CAP_DAC_OVERRIDE},
    {"CAP_DAC_READ_SEARCH", CAP_DAC_READ_SEARCH},
    {"CAP_FOWNER", CAP_FOWNER},
    {"CAP_SYS_RAWIO", CAP_SYS_RAWIO},
    {"CAP_SYS_ADMIN", CAP_SYS_ADMIN},
    {"CAP_SYS_NICE", CAP_SYS_NICE},
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: capbset \"CAP_A CAP_B ...\" PROG [ARGS...]\n");
        return 2;
    }
    unsigned long long keep = 0;
    char *list = strdup(argv[1]), *save = NULL;
    for (char *w = strtok_r(list, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(known[i].name, w) != 0)
            i++;
        if (i == sizeof known / sizeof known[0]) {
            fprintf(stderr, "capbset: unknown capability %s\n", w);
            return 2;
        }
        keep |= 1ULL << known[i].cap;
    }
    free(list);
    for (int cap = 0; cap <= 63; cap++) {
        if (keep & (1ULL << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) {
            perror("capbset: PR_CAPBSET_DROP");
            return 1;
        }
    }
    execv(argv[2], argv + 2);
    perror("capbset: exec");
    return 127;
}
