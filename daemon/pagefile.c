/* SPDX-License-Identifier: MIT */
/*
 * pagefile.c — page files and the generation counter of usbtimesyncd.
 */
#include "pagefile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define MAX_PAGES 128

static char run_dir[256];
static int gen_fd = -1;
static uint32_t gen_last;
static pthread_mutex_t gen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct usbts_page *pages[MAX_PAGES]; /* every page this daemon maps: never unmapped */
static int npages;

static void gen_store(uint32_t g)
{
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%u\n", (unsigned)g);
    if (gen_fd >= 0 && (pwrite(gen_fd, buf, (size_t)n, 0) != n || ftruncate(gen_fd, n) != 0))
        logmsg(LOG_ERR, "cannot write %s/generation: %s", run_dir, strerror(errno));
}

static void gen_at_least(uint32_t g)
{
    pthread_mutex_lock(&gen_mu);
    if (g > gen_last) {
        gen_last = g;
        gen_store(g);
    }
    pthread_mutex_unlock(&gen_mu);
}

uint32_t pagefile_next_generation(void)
{
    pthread_mutex_lock(&gen_mu);
    if (++gen_last == 0)
        gen_last = 1;
    uint32_t g = gen_last;
    gen_store(g);
    pthread_mutex_unlock(&gen_mu);
    return g;
}

bool pagefile_init(const char *dir)
{
    snprintf(run_dir, sizeof run_dir, "%s", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        logmsg(LOG_ERR, "cannot create the run directory %s: %s", dir, strerror(errno));
        return false;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        logmsg(LOG_ERR, "the run directory %s is not a directory", dir);
        return false;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022)) {
        logmsg(LOG_ERR, "the run directory %s is owned by uid %u with mode %03o: it must be ours (uid %u) and "
               "writable by no one else, or clients could be fed another model",
               dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777), (unsigned)geteuid());
        return false;
    }
    char path[320];
    snprintf(path, sizeof path, "%s/generation", dir);
    gen_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (gen_fd < 0) {
        logmsg(LOG_ERR, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    char buf[16] = "";
    ssize_t n = pread(gen_fd, buf, sizeof buf - 1, 0);
    if (n > 0) {
        buf[n] = '\0';
        gen_last = (uint32_t)strtoul(buf, NULL, 10);
    }
    return true;
}

void pagefile_name(const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s.page", name);
}

static struct usbts_page *map_rw(int fd)
{
    void *p = mmap(NULL, USBTS_PAGE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void remember(struct usbts_page *p)
{
    if (npages < MAX_PAGES)
        pages[npages++] = p;
}

static void claim(struct usbts_page *p)
{
    p->writer_pid = (uint32_t)getpid();
    for (int i = 0; i < USBTS_PAGE_MAX_DEVICES; i++) {
        atomic_store(&p->devices[i].minor, UINT32_MAX);
        atomic_store(&p->devices[i].unplugged, false);
    }
    atomic_store(&p->ndevices, 0);
    atomic_store(&p->live, 1);
}

/* An existing page file this daemon may carry on writing. */
static struct usbts_page *reuse(const char *path, const char *controller, uint64_t instance)
{
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    struct usbts_page *p = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022) &&
        st.st_size == USBTS_PAGE_FILE_SIZE)
        p = map_rw(fd);
    close(fd);
    if (!p)
        return NULL;
    char why[256];
    if (!usbts_page_check(p, USBTS_PAGE_FILE_SIZE, why, sizeof why) || strcmp(p->controller, controller) != 0 ||
        p->instance != instance || atomic_load(&p->pub.gone)) {
        munmap(p, USBTS_PAGE_FILE_SIZE); /* never handed to anyone */
        return NULL;
    }
    return p;
}

struct usbts_page *pagefile_open(const char *name, const char *controller, uint64_t instance, bool *reused)
{
    char file[128], path[400], tmp[420];
    pagefile_name(name, file, sizeof file);
    snprintf(path, sizeof path, "%s/%s", run_dir, file);
    struct usbts_page *p = reuse(path, controller, instance);
    if (p) {
        struct usbts_model m;
        if (usbts_tracker_try_read_model(&p->pub, &m))
            gen_at_least(m.generation);
        claim(p);
        remember(p);
        *reused = true;
        return p;
    }
    *reused = false;
    snprintf(tmp, sizeof tmp, "%s/.%s.new", run_dir, file);
    unlink(tmp);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        logmsg(LOG_ERR, "cannot create %s: %s", tmp, strerror(errno));
        return NULL;
    }
    if (fchmod(fd, 0644) != 0 || ftruncate(fd, USBTS_PAGE_FILE_SIZE) != 0 || !(p = map_rw(fd))) {
        logmsg(LOG_ERR, "cannot size or map %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return NULL;
    }
    close(fd);
    memset(p, 0, sizeof *p);
    p->magic = USBTS_PAGE_MAGIC;
    p->version = USBTS_PAGE_VERSION;
    p->size = (uint32_t)sizeof *p;
    snprintf(p->controller, sizeof p->controller, "%s", controller);
    p->instance = instance;
    p->flags = USBTS_PAGE_SHARED;
    atomic_store(&p->heartbeat_ns, usbts_monotonic_ns());
    claim(p);
    /* Whole before it has its name: a reader never sees half a page. */
    if (rename(tmp, path) != 0) {
        logmsg(LOG_ERR, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return NULL; /* the mapping stays: harmless, and never read */
    }
    remember(p);
    return p;
}

void pagefile_all_not_live(void)
{
    for (int i = 0; i < npages; i++)
        atomic_store(&pages[i]->live, 0);
}
